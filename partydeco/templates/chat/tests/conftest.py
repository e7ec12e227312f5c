"""The tests' settings, whatever the environment or a ``.env`` file says."""

import os

os.environ["TOKENS"] = "alice-token:alice,bob-token:bob"
