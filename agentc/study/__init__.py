"""The heterogeneous-fleet TCO study (`agentc study tco`): for each agent, fleet family, SLA
tier, arrival rate and price basis, the cheapest fleet and placement that meets the SLA."""
