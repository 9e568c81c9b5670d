"""The only code that talks to Odoo (see DESIGN.md, rule 3)."""
