"""Blood units on the shelves: receiving, releasing, discarding and expiring them, their history, and the
stock dashboard by group and component with days of supply."""
