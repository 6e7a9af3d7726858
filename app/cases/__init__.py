"""Cases (意见建议 / 问题反映): registered, handled, fed back, resolved."""
