"""Runners: execute a model or engine on one runtime behind one interface."""
