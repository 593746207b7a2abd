"""The web app's parts, one concern a module; app.py lays them out and wires them (see README's layout)."""
