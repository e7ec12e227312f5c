"""partydeco: PartyKit-style real-time rooms on Quart and Hypercorn."""
