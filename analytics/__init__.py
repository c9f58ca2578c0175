"""Analytics: campaign effect estimators and their simulator, campaign reports, demand forecast."""
