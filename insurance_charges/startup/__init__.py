"""Starting the service: ``python -m insurance_charges.startup`` checks, then runs gunicorn.

``make run`` and the image's launcher start gunicorn through it, so that everything gunicorn
reads on its own is checked before gunicorn reads it (``gunicorn_environ``), a busy or
unusable address is one line before the model loads (``address``), and Ctrl-C at any moment
of the start ends it without a traceback (``interrupts``).
"""
