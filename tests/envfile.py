"""A pytest plugin loaded before Django's settings (``-p tests.envfile`` in pytest.ini): the suite
and the sites it starts never read the developer's ``.env``, so a test cannot touch the database
or keys configured there."""
import os

os.environ["OPENCVI_ENV_FILE"] = ""
