# Shortcuts for `python3 dev.py …` (the README's two commands need only Python).
.PHONY: demo test
demo:
	python3 dev.py demo
test:
	python3 dev.py test
