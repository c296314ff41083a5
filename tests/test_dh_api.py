# The Tryton test cases of dh_api (see test_dh_metering.py).
from trytond.modules.dh_api.tests.test_module import *  # noqa: F401,F403
