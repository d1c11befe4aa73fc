"""Unique names within a population.

The LLM proposes a name; when it is missing, implausible or already taken (the tiny local model
repeats itself a lot), the persona is renamed deterministically from seeded first/last-name lists
chosen by the persona's country (nationality/residence) and gender.
"""

from __future__ import annotations

import hashlib
import random
import re

_NEUTRAL = ["Alex", "Jordan", "Taylor", "Sam", "Riley", "Casey", "Morgan", "Jamie", "Avery", "Quinn",
            "Rowan", "Skyler", "Devon", "Reese", "Emerson", "Harper", "Kai", "Sage", "Robin", "Charlie"]

#: country key -> (female first names, male first names, last names)
NAMES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "us": (["Emily", "Maria", "Ashley", "Jessica", "Linda", "Karen", "Brianna", "Grace", "Monique",
            "Megan", "Rachel", "Sandra", "Tanya", "Hannah", "Olivia", "Denise", "Latoya", "Rosa", "Amy", "Joy"],
           ["James", "Michael", "Robert", "David", "Carlos", "Kevin", "Brandon", "Tyrone", "Eric", "Luis",
            "Daniel", "Jason", "Mark", "Anthony", "Scott", "Marcus", "Ryan", "Gary", "Jose", "Wayne"],
           ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
            "Martinez", "Wilson", "Anderson", "Thomas", "Jackson", "Harris", "Clark", "Lewis", "Walker",
            "Young", "Nguyen", "Hill", "Baker", "Nelson", "Carter", "Mitchell", "Perez", "Roberts",
            "Turner", "Phillips", "Campbell"]),
    "br": (["Ana", "Beatriz", "Camila", "Fernanda", "Juliana", "Larissa", "Mariana", "Patricia"],
           ["Joao", "Pedro", "Lucas", "Rafael", "Thiago", "Gustavo", "Bruno", "Felipe"],
           ["Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Ferreira", "Almeida", "Ribeiro"]),
    "mx": (["Guadalupe", "Sofia", "Valeria", "Ximena", "Daniela", "Lucia", "Carmen", "Paola"],
           ["Alejandro", "Javier", "Miguel", "Diego", "Ricardo", "Fernando", "Eduardo", "Arturo"],
           ["Hernandez", "Lopez", "Gonzalez", "Ramirez", "Flores", "Morales", "Reyes", "Cruz", "Torres"]),
    "in": (["Priya", "Ananya", "Kavya", "Deepa", "Meera", "Sunita", "Neha", "Lakshmi"],
           ["Arjun", "Rahul", "Vikram", "Sanjay", "Amit", "Rohan", "Karthik", "Suresh"],
           ["Sharma", "Patel", "Reddy", "Iyer", "Gupta", "Singh", "Nair", "Das", "Mehta", "Rao"]),
    "cn": (["Li Na", "Wang Fang", "Zhang Min", "Liu Yan", "Chen Jing", "Yang Li", "Zhao Hui", "Huang Mei"],
           ["Wang Wei", "Li Qiang", "Zhang Lei", "Liu Yang", "Chen Jie", "Yang Tao", "Zhao Gang", "Wu Bin"],
           [""]),
    "no": (["Ingrid", "Kari", "Silje", "Ingeborg", "Marte", "Hanne", "Solveig", "Tone"],
           ["Lars", "Ole", "Knut", "Eirik", "Magnus", "Sindre", "Havard", "Bjorn"],
           ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen"]),
    "de": (["Anna", "Katrin", "Sabine", "Lena", "Julia", "Monika", "Petra", "Clara"],
           ["Jonas", "Stefan", "Matthias", "Lukas", "Tobias", "Andreas", "Felix", "Jurgen"],
           ["Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch"]),
    "gb": (["Charlotte", "Amelia", "Sophie", "Chloe", "Eleanor", "Lucy", "Fiona", "Imogen"],
           ["Oliver", "Harry", "George", "Callum", "Thomas", "Alfie", "Rhys", "Hamish"],
           ["Taylor", "Evans", "Wright", "Roberts", "Hughes", "Edwards", "Green", "Hall", "Wood"]),
    "fr": (["Camille", "Chloe", "Manon", "Lea", "Amelie", "Juliette", "Claire", "Elodie"],
           ["Louis", "Hugo", "Antoine", "Julien", "Mathieu", "Nicolas", "Pierre", "Theo"],
           ["Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Lefebvre", "Girard", "Roux", "Fournier"]),
}
_COUNTRY_WORDS = {
    "us": ["united states", "usa", "american", "u.s."], "br": ["brazil", "brazilian"],
    "mx": ["mexico", "mexican"], "in": ["india", "indian"], "cn": ["china", "chinese"],
    "no": ["norway", "norwegian", "scandinavia"], "de": ["germany", "german"],
    "gb": ["united kingdom", "british", "england", "scotland", "uk"], "fr": ["france", "french"],
}


def country_key(*texts: object) -> str:
    """The name-list key for a persona's country, from any of its texts ("us" when unknown)."""
    blob = " ".join(str(t) for t in texts if t).lower()
    for key, words in _COUNTRY_WORDS.items():
        if any(re.search(rf"\b{re.escape(w)}\b", blob) for w in words):
            return key
    return "us"


def _first_names(key: str, gender: str | None) -> list[str]:
    female, male, _ = NAMES[key]
    g = (gender or "").strip().lower()
    if g.startswith(("f", "w")):
        return female
    if g.startswith("m") and not g.startswith("man-"):
        return male
    return _NEUTRAL if g else female + male


def fallback_name(seed: int, index: int, attempt: int, *, country: str = "us", gender: str | None = None) -> str:
    """A seeded name from the lists; `attempt` walks to the next candidate on a collision."""
    digest = hashlib.sha256(f"{seed}:{index}:{attempt}".encode()).digest()
    rng = random.Random(digest)
    first = rng.choice(_first_names(country, gender))
    last = rng.choice(NAMES[country][2])
    return f"{first} {last}".strip()


def plausible_name(name: object) -> bool:
    """Two to four words of letters (with ' . -), no digits: what a person's name looks like."""
    if not isinstance(name, str):
        return False
    words = name.strip().split()
    return 1 <= len(words) <= 4 and all(re.fullmatch(r"[^\W\d_][\w'.\-]*", w) for w in words) and len(name) <= 40


class NameRegistry:
    """Hands out names that are unique within one population (case-insensitive)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.taken: set[str] = set()
        self.renamed: list[tuple[int, str, str]] = []  # (index, proposed, final)

    def claim(self, proposed: object, index: int, *, country: str, gender: str | None) -> str:
        if plausible_name(proposed) and len(str(proposed).split()) >= 2 and str(proposed).strip().lower() not in self.taken:
            name = " ".join(str(proposed).split())
        else:
            for attempt in range(10_000):
                name = fallback_name(self.seed, index, attempt, country=country, gender=gender)
                if attempt >= 50:  # lists exhausted for this country/gender: add a middle initial
                    name = name.replace(" ", f" {chr(65 + attempt % 26)}. ", 1)
                if name.lower() not in self.taken:
                    break
            self.renamed.append((index, str(proposed or ""), name))
        self.taken.add(name.lower())
        return name
