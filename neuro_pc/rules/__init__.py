"""The rule language: parse ``dw = ...`` into sum-of-products terms; locality."""
from neuro_pc.rules.locality import (LEVELS, RuleLocality, circuit_level, format_report,
                                     locality_report, rule_locality)
from neuro_pc.rules.parse import NonLocalRuleError, ParsedRule, RuleError, Term, parse_rule

__all__ = ["LEVELS", "RuleLocality", "circuit_level", "format_report", "locality_report",
           "rule_locality", "NonLocalRuleError", "ParsedRule", "RuleError", "Term", "parse_rule"]
