"""Backend of the WeChat mini-program for deputy liaison stations (人大代表之家 / 代表联络站)."""
