"""Test-wide settings: hypothesis profiles, chosen by HYPOTHESIS_PROFILE.

`dev` (the default) keeps the suite quick; `ci` runs more examples within
CI's time budget; `thorough` is for a long local hunt.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
