# The SMS gateway tests of dh_alarm (pure Python, no database).
from trytond.modules.dh_alarm.tests.test_sms import *  # noqa: F401,F403
