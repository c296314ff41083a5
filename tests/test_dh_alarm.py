# The Tryton test cases of dh_alarm (see test_dh_metering.py).
from trytond.modules.dh_alarm.tests.test_module import *  # noqa: F401,F403
