"""credhelper: keeps apps supplied with valid temporary AWS credentials."""

__version__ = "0.1.0"
