"""The only code that talks to WeChat, and the fake WeChat server used offline and in tests."""
