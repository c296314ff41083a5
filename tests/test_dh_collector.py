# The Tryton test cases of dh_collector (see test_dh_metering.py).
from trytond.modules.dh_collector.tests.test_module import *  # noqa: F401,F403
