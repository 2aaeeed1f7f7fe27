"""`python -m {{ cookiecutter.project_slug }}` runs the command line."""

from {{ cookiecutter.project_slug }}.cli import app

if __name__ == "__main__":
    app(prog_name="{{ cookiecutter.project_slug }}")
