# The Tryton test cases of dh_wechat (see test_dh_metering.py).
from trytond.modules.dh_wechat.tests.test_module import *  # noqa: F401,F403
