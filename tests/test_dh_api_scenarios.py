"The dh_api scenario doctests (scenario_*.rst), run through proteus."
import pytest

import trytond.modules.dh_api.tests as package
from trytond.modules.dh_api.tests.test_scenario import run_scenario, scenarios

CASES = scenarios(package.__name__, package.__file__)


@pytest.mark.parametrize('case', CASES, ids=[c.id().rsplit('/', 1)[-1] for c in CASES])
def test_scenario(case):
    run_scenario(case)
