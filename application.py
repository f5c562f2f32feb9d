from insurance_charges import create_app

application = create_app()
