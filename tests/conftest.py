"""Fixtures shared by every test; each fixture module is registered as a plugin."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.app",
    "tests.fixtures.s3",
    "tests.fixtures.fake_kie",
    "tests.fixtures.fake_replicate",
    "tests.fixtures.fake_fal",
    "tests.fixtures.topology",
    "tests.fixtures.redis_server",
    "tests.fixtures.smtp",
    "tests.fixtures.node_tools",
    "tests.fixtures.webhook_inbox",
]
