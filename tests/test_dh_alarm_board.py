# The wall status board's module tests (see addons/dh_alarm/tests/test_board.py).
from trytond.modules.dh_alarm.tests.test_board import *  # noqa: F401,F403
