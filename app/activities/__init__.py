"""Deputy activities (代表活动): plans, invitations, attendance, sign-ups, minutes."""
