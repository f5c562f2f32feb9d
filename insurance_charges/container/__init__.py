"""How the image runs: nginx in front of gunicorn, started and stopped by one launcher."""
