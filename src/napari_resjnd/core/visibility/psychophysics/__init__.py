"""Psychophysics for JND maps: 2AFC and flicker trials of JND-shaped noise placed by
QUEST+, sessions saved after every trial, psychometric fits, a simulated observer."""
