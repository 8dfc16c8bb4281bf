"""Entry points for the pre-commit framework and the git hooks convergent installs."""
