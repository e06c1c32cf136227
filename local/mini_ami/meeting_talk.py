"""A small grammar of design-meeting talk, after AMI's remote-control scenario:
agenda moves, opinions, questions, numbers, with fillers, repetitions and false starts."""
import itertools

NOUNS = ("remote control", "remote", "button", "case", "casing", "logo", "prototype", "budget", "price",
         "battery", "screen", "display", "menu", "volume", "channel", "chip", "speaker", "microphone",
         "design", "shape", "colour scheme", "company colours", "target group", "market", "report",
         "presentation", "agenda", "drawing", "sketch", "meeting", "survey", "interface", "scroll wheel",
         "power button", "charger", "light", "sensor", "manual", "cover", "keypad", "model", "product",
         "television", "evaluation", "trend", "fashion", "material", "feature")
PLURALS = ("buttons", "batteries", "users", "customers", "features", "colours", "people", "channels",
           "designs", "materials", "options", "ideas", "costs", "points", "kids", "students")
ADJECTIVES = ("yellow", "black", "grey", "blue", "red", "round", "curved", "flat", "spongy", "soft",
              "hard", "cheap", "expensive", "simple", "fancy", "trendy", "modern", "small", "big",
              "easy", "difficult", "important", "useful", "nice", "good", "bad", "strong", "light",
              "heavy", "new", "old", "young", "original", "boring", "interesting", "different")
MATERIALS = ("plastic", "rubber", "wood", "titanium", "metal", "latex", "glass")
PEOPLE = ("project manager", "marketing expert", "industrial designer", "interface designer",
          "user interface designer", "team", "management", "client", "designer")
VERBS = ("use", "design", "change", "add", "remove", "check", "discuss", "test", "look at", "think about",
         "talk about", "keep", "drop", "include", "finish", "improve", "consider", "present")
NUMBERS = ("two", "three", "four", "five", "ten", "twelve", "fifteen", "twenty", "twenty five", "thirty",
           "forty", "fifty", "sixty", "a hundred", "twelve and a half", "seven point five")

TEMPLATES = (
    "i think we should {verb} the {noun}",
    "what do you think about the {adj} {noun}",
    "so the next thing on the agenda is the {noun}",
    "we have a budget of {num} euros for the {noun}",
    "maybe we could make the {noun} more {adj}",
    "the {noun} should be {adj} and {adj}",
    "i don't know if the {noun} is {adj} enough",
    "our customers want something {adj}",
    "can you show us the {noun} on the slide",
    "let's move on to the {noun}",
    "i'll send you the {noun} after the meeting",
    "it costs about {num} euros",
    "that's a good point about the {noun}",
    "do we really need a {noun}",
    "the {person} will {verb} the {noun}",
    "if we use {material} the {noun} will be more {adj}",
    "i agree with you about the {noun}",
    "we should ask the {person} about the {noun}",
    "how many {plural} do we need",
    "most {plural} find the {noun} too {adj}",
    "{num} percent of the {plural} said the {noun} was {adj}",
    "i was thinking of a {adj} {noun} made of {material}",
    "can we {verb} the {noun} before the next meeting",
    "the {noun} is not very {adj} at the moment",
    "we can't {verb} the {noun} because of the budget",
    "i'm not sure about the {noun}",
    "so that's the {noun} done",
    "let me just {verb} the {noun}",
    "who is going to {verb} the {noun}",
    "the {plural} don't like the {noun}",
    "we need to {verb} the {noun} and the {noun}",
    "so we have about {num} minutes left",
    "i think the {person} had some ideas about the {noun}",
    "is the {noun} {adj} or {adj}",
    "we could put the {noun} on the side",
    "it should fit in your hand",
    "there was a question about the {noun}",
    "the {noun} has to be {adj} for the {plural}",
    "what if we {verb} the {noun} instead",
    "okay so i'll {verb} the {noun} and you {verb} the {noun}",
)
FILLERS = ("um", "uh", "you know", "i mean", "like", "well", "so", "okay", "actually", "basically")
OPENERS = ("so", "um", "uh", "well", "okay", "yeah", "and", "but", "right", "okay so", "yeah so", "um so")
TAGS = ("i think", "yeah", "or something", "i guess", "right", "you know", "as well")
BACKCHANNEL_WORDS = ("yeah", "okay", "right", "mm", "hmm", "yes", "sure", "oh", "alright", "mhm", "uh-huh",
                     "exactly", "true", "yep", "i see", "fair enough", "good", "cool", "nice", "no")

SLOTS = {"noun": NOUNS, "adj": ADJECTIVES, "plural": PLURALS, "material": MATERIALS, "person": PEOPLE,
         "verb": VERBS, "num": NUMBERS}


def fill(template, rng):
    """A template with each {slot} replaced by a random entry."""
    parts = template.split("{")
    out = [parts[0]]
    for part in parts[1:]:
        slot, rest = part.split("}", 1)
        out.append(str(rng.choice(SLOTS[slot])) + rest)
    return "".join(out)


def disfluent(words, rng):
    """Add meeting-style disfluencies: an opener, a filler, a repetition, a false start, a tag."""
    words = list(words)
    if rng.random() < 0.4:
        words = str(rng.choice(OPENERS)).split() + words
    if rng.random() < 0.3 and len(words) > 2:
        i = int(rng.integers(1, len(words)))
        words[i:i] = str(rng.choice(FILLERS)).split()
    if rng.random() < 0.15:
        i = int(rng.integers(0, len(words)))
        words.insert(i, words[i])
    if rng.random() < 0.1 and len(words) > 3:
        words = words[:2] + words
    if rng.random() < 0.15:
        words += str(rng.choice(TAGS)).split()
    return words


def utterances(rng, n):
    """n meeting utterances (with repeats; the caller de-duplicates)."""
    for _ in range(n):
        yield " ".join(disfluent(fill(str(rng.choice(TEMPLATES)), rng).split(), rng))


def backchannels():
    """Short listener responses: single words and ordered pairs."""
    yield from BACKCHANNEL_WORDS
    for a, b in itertools.permutations(BACKCHANNEL_WORDS, 2):
        yield f"{a} {b}"
