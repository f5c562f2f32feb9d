"""The web form: labelled fields, a readable estimate, problems beside fields, values kept."""

import re

import pytest

from insurance_charges.core.schema import EXAMPLE_RECORD, FIELDS


def form_data(**changes):
    return {**{k: str(v) for k, v in EXAMPLE_RECORD.items()}, **changes}


def test_form_shows_six_labelled_fields_and_explains_the_estimate(client, real_model):
    html = client.get("/").get_data(as_text=True)
    for field in FIELDS:
        assert f'<label for="{field.name}">{field.label}</label>' in html
        assert f'id="{field.name}-hint"' in html
    assert html.count("<select") == 3 and html.count('type="number"') == 3
    assert 'min="18" max="100" step="1"' in html
    assert "typical error" in html and "not as a" in html
    assert '<meta name="viewport"' in html


def test_submitting_shows_the_estimate_in_whole_dollars_beside_the_filled_form(client, real_model):
    response = client.post("/", data=form_data())
    html = response.get_data(as_text=True)
    expected = f"${real_model.predict([EXAMPLE_RECORD])[0]:,.0f}"
    assert response.status_code == 200
    assert re.search(
        r"Estimated yearly charges: <span class=\"amount\">\$\d{1,3}(,\d{3})*</span>", html
    )
    assert f'<span class="amount">{expected}</span>' in html
    assert 'value="27.9"' in html and '<option value="southwest" selected>' in html


def test_out_of_training_range_values_are_estimated_with_a_note(client):
    html = client.post("/", data=form_data(age="80")).get_data(as_text=True)
    assert "Estimated yearly charges" in html
    assert "age 80 is outside the range seen in training" in html


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"age": "abc"}, "age"),
        ({"age": "17"}, "age"),
        ({"bmi": "200"}, "bmi"),
        ({"children": "2.5"}, "children"),
        ({"sex": ""}, "sex"),
        ({"region": "mars"}, "region"),
    ],
)
def test_invalid_submission_explains_the_problem_next_to_its_field(client, changes, field):
    response = client.post("/", data=form_data(**changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<a href="#{field}">' in html  # the error summary links to the field
    assert f'id="{field}-error"' in html
    assert re.search(rf'id="{field}"[^>]*aria-describedby="{field}-hint {field}-error"', html, re.S)
    assert "Estimated yearly charges" not in html


def test_invalid_submission_keeps_every_typed_value(client):
    typed = form_data(age="abc", bmi="31.5", children="3", smoker="no", region="northeast")
    html = client.post("/", data=typed).get_data(as_text=True)
    assert 'value="abc"' in html and 'value="31.5"' in html and 'value="3"' in html
    assert '<option value="no" selected>' in html and '<option value="northeast" selected>' in html
    assert '<option value="female" selected>' in html


def test_typed_text_is_escaped_when_shown_again(client):
    html = client.post("/", data=form_data(age='"><b>x</b>')).get_data(as_text=True)
    assert "<b>x</b>" not in html
    # Shown back, escaped: in the input's value and, quoted, in the message beside it.
    assert 'value="&#34;&gt;&lt;b&gt;x&lt;/b&gt;"' in html
    assert (
        "Age must be a whole number from 18 to 100; &#34;&#34;&gt;&lt;b&gt;x&lt;/b&gt;&#34; is not."
    ) in html


def test_empty_submission_lists_all_six_problems(client):
    response = client.post("/", data={})
    assert response.status_code == 422
    assert "Please correct 6 fields" in response.get_data(as_text=True)


def test_unknown_page_is_a_readable_html_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "Back to the estimator" in response.get_data(as_text=True)


def test_a_file_part_in_the_form_is_refused_not_ignored(client):
    import io

    data = {**form_data(), "age": "19", "upload": (io.BytesIO(b"age,sex\n"), "book.csv")}
    response = client.post("/", data=data, content_type="multipart/form-data")
    assert response.status_code == 415 and response.mimetype == "text/html"
    assert "does not accept files" in response.get_data(as_text=True)
