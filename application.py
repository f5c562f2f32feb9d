"""gunicorn's and Elastic Beanstalk's entry point."""
from insurance_charges.web import create_app

application = create_app()
