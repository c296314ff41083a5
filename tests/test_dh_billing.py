# The Tryton test cases of dh_billing (see test_dh_metering.py).
from trytond.modules.dh_billing.tests.test_module import *  # noqa: F401,F403
