"""The diagnosis: which funnel step lost buyers lately, for whom, why — and what to do about it.

stats.py (Beta posteriors), segments.py (who), counts.py (reads the warehouse), detect.py
(against the store's history and the reference), localise.py (the segment that explains it),
causes.py and impact.py (why, and what fixing it is worth), recommend.py (playbooks),
engine.py (one run, recorded as events). docs/diagnosis.md explains the decisions.
"""
