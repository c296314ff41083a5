# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The scenario_*.rst doctests, one pytest case each"
from trytond.modules.dh_metering.tests.test_scenario import (  # noqa: F401
    run_scenario, scenarios)
