"""Commerce: campaigns, coupons, referrals, orders, segments, broadcasts, checkout."""
