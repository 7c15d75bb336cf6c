"""Small FastAPI apps used by the tests, in a correct form and in known-bad forms."""
