from trytond.modules.dh_alarm.tests.test_rules import *  # noqa: F401,F403
