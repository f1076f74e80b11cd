"""SVG icons of the desktop app (package so that wheels ship them)."""
