"""Synthetic personal-memory events for scale benchmarks: one user, about two years of chat
turns, notes and screen text, with a recurring cast, places and projects.

Entities recur across thousands of events (what the knowledge graph is measured on) while the
texts stay mostly distinct (varying details, numbers, dates), and nothing in them looks like a
secret, contact or link, so the write path stores them unredacted and the vault stays empty.
Everything is drawn from one seeded `random.Random`: the same seed gives the same events.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import zip_longest

from memory.events import Event

START = datetime(2023, 1, 2, tzinfo=UTC)
WAKING_S = 16 * 3600
"""Events fall between 07:00 and 23:00; the clock skips the night."""


@dataclass(frozen=True)
class Person:
    name: str
    surname: str
    relation: str
    job: str
    city: str
    org: str
    hobby: str

    def __str__(self) -> str:
        return self.name

    @property
    def full(self) -> str:
        return f"{self.name} {self.surname}"

    @property
    def work(self) -> bool:
        return self.relation in ("colleague", "manager", "client")


@dataclass(frozen=True)
class Book:
    title: str
    author: str

    def __str__(self) -> str:
        return self.title


def _cast() -> tuple[Person, ...]:
    rows = """
    Priya Sharma colleague|product designer|Lisbon|Northwind Labs|pottery class
    Marco Rossi colleague|backend engineer|Milan|Northwind Labs|cycling
    Lena Fischer manager|engineering manager|Berlin|Northwind Labs|bouldering
    Tomás Silva colleague|data analyst|Porto|Northwind Labs|surfing
    Aisha Bello colleague|recruiter|Lagos|Northwind Labs|running
    Kenji Watanabe colleague|mobile developer|Kyoto|Northwind Labs|photography
    Sofia Martínez colleague|marketing lead|Barcelona|Northwind Labs|salsa lessons
    Daniel Okafor client|operations director|Toronto|Helio Health|chess
    Hannah Berg client|procurement manager|Copenhagen|Fernway Studio|sailing
    Ravi Patel colleague|site reliability engineer|Austin|Northwind Labs|board games
    Chloe Dubois colleague|UX researcher|Lyon|Northwind Labs|yoga
    Omar Haddad manager|head of product|Amsterdam|Northwind Labs|tennis
    Grace Kim colleague|finance partner|Seattle|Northwind Labs|hiking
    Lucas Almeida client|program manager|Lisbon|Oakridge University|football
    Nina Kowalski colleague|QA engineer|Warsaw|Northwind Labs|knitting
    Ben Carter colleague|security engineer|Chicago|Northwind Labs|rock climbing
    Maya Cohen friend|architect|Tel Aviv|Studio Arca|swimming
    Sam Rivera partner|high school teacher|Lisbon|Riverside High|gardening
    Elena Petrova friend|violinist|Vienna|Vienna Chamber Orchestra|baking
    Jonas Lindqvist friend|carpenter|Stockholm|Lindqvist Woodworks|kayaking
    Fatima Zahra friend|pharmacist|Marseille|Green Cross Pharmacy|birdwatching
    Leo Nguyen friend|chef|Hanoi|Bao Brothers|street food tours
    Clara Hughes sister|veterinarian|Edinburgh|Meadow Vet Clinic|horse riding
    Tom Hughes brother|civil engineer|Manchester|Arup|football
    Margaret Hughes mother|retired librarian|Bristol|Bristol Central Library|gardening
    Peter Hughes father|retired pilot|Bristol|Atlantic Air|model trains
    Isabel Ortega cousin|journalist|Mexico City|El Diario|photography
    Ahmed Karim neighbour|taxi driver|Lisbon|Lisboa Cabs|fishing
    Yuki Tanaka friend|illustrator|Osaka|Paper Crane Press|manga
    Rosa Bianchi friend|sommelier|Florence|Enoteca Rosa|wine tasting
    Diego Fernández climbing partner|physiotherapist|Madrid|MoveWell Clinic|bouldering
    Anna Müller friend|doctoral student|Munich|Oakridge University|running
    Kwame Mensah friend|photographer|Accra|Lightbox Studio|cycling
    Olivia Brown college friend|lawyer|London|Brown and Hale|theatre
    Ethan Park college friend|game developer|Seoul|Pixel Harbor|video games
    Zoe Adams book club friend|nurse|Dublin|St. James Hospital|reading
    Victor Dumont landlord|property manager|Lisbon|Dumont Properties|golf
    Irene Costa dentist|dentist|Lisbon|Smile Studio|tennis
    Paul Schneider running coach|coach|Lisbon|Harbor Runners|marathons
    Lucia Romano friend|florist|Naples|Fiori di Lucia|cooking
    """
    people = []
    for row in filter(None, (r.strip() for r in rows.splitlines())):
        head, job, city, org, hobby = row.split("|")
        name, surname, relation = head.split(" ", 2)
        people.append(Person(name, surname, relation, job, city, org, hobby))
    return tuple(people)


CAST = _cast()
CITIES = ("Lisbon", "Berlin", "Porto", "Barcelona", "Amsterdam", "Kyoto", "Toronto", "Edinburgh",
          "Copenhagen", "Vienna", "Seattle", "Prague", "Athens", "Mexico City", "Oaxaca",
          "Dublin", "Seville", "Istanbul", "Marrakech", "Bristol")
PLACES = ("Riverside Park", "the farmers market", "Harbor Climbing Gym", "the central library",
          "the waterfront", "Alfama", "the botanical garden", "the old tram depot",
          "the co-working space", "the Saturday flea market", "Belém", "the community pool",
          "the bike path along the river", "the train station", "the corner bakery")
RESTAURANTS = ("Casa Lume", "Blue Lotus", "Trattoria Nonna Rosa", "Sakura Ramen",
               "The Copper Pot", "Little Saigon Kitchen", "El Farolito", "Masala House",
               "Green Fig", "Dockside Oyster Bar", "Bao Brothers", "Café Mirabel",
               "Taberna do Largo", "Smokehouse 22", "Pão e Vinho")
ORGS = ("Northwind Labs", "Helio Health", "Fernway Studio", "Oakridge University",
        "City Council", "Harbor Runners", "Bluebird Credit Union", "Studio Arca",
        "Lisbon Tech Meetup", "Atlantic Air")
PROJECTS = ("Atlas migration", "quarterly budget", "onboarding redesign", "search revamp",
            "Q3 roadmap", "data retention policy", "mobile app launch", "vendor review",
            "hiring plan", "customer survey", "billing service rewrite", "offsite planning",
            "accessibility audit", "pricing experiment", "analytics dashboard")
FOODS = ("ramen", "dumplings", "tacos", "paella", "sushi", "pho", "lasagna", "shakshuka",
         "banana bread", "sourdough", "green curry", "falafel", "pastéis de nata",
         "grilled sardines", "mushroom risotto", "bibimbap")
ACTIVITIES = ("bouldering", "running", "yoga", "swimming", "cycling", "hiking", "pottery",
              "salsa", "chess", "tennis", "gardening", "birdwatching", "kayaking", "sketching")
TOPICS = ("sleep and productivity", "home espresso", "learning Portuguese", "index funds",
          "composting", "remote work", "marathon training", "sourdough starters",
          "electric bikes", "climate policy", "typography", "retirement savings",
          "houseplants", "language models")
BOOKS = (Book("The Overstory", "Richard Powers"), Book("Piranesi", "Susanna Clarke"),
         Book("Project Hail Mary", "Andy Weir"), Book("Klara and the Sun", "Kazuo Ishiguro"),
         Book("The Left Hand of Darkness", "Ursula K. Le Guin"),
         Book("Educated", "Tara Westover"), Book("Thinking, Fast and Slow", "Daniel Kahneman"),
         Book("The Ministry for the Future", "Kim Stanley Robinson"),
         Book("Pachinko", "Min Jin Lee"), Book("A Gentleman in Moscow", "Amor Towles"),
         Book("Four Thousand Weeks", "Oliver Burkeman"), Book("Circe", "Madeline Miller"))
EVENTS = ("Maya's wedding", "the jazz festival", "the Lisbon half marathon", "the company offsite",
          "Dad's 70th birthday", "the book club", "the climbing competition",
          "the housewarming", "the summer barbecue", "Clara's graduation", "the design conference",
          "the neighbourhood cleanup")
HEALTH = ("dentist appointment", "physio session for the knee", "flu shot", "blood test",
          "eye exam", "annual checkup", "allergy consultation")
SHOWS = ("Severance", "The Bear", "Slow Horses", "Shogun", "Only Murders in the Building",
         "Planet Earth", "The Great British Bake Off")
ITEMS = ("sunscreen", "rain jacket", "hiking boots", "the good camera", "adapter plug",
         "reading glasses", "swimsuit", "gift for the hosts", "snacks for the train",
         "headphones", "notebook", "water bottle", "spare batteries", "Biscuit's leash")
FEELINGS = ("tired but happy", "restless", "calm", "a bit anxious", "energised", "grateful",
            "distracted", "proud", "overwhelmed", "content")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PETS = ("Biscuit", "Miso")
"""The user's beagle and cat."""
DETAILS = (
    "It was raining the whole time.", "We should book by {day}.",
    "{person} might join us.", "Parking there is a nightmare, take the tram.",
    "I'll bring the {food}.", "Remind me to call {person} about it.",
    "The last one took {mins} minutes longer than planned.", "No rush on this.",
    "Let's keep the budget under {price}.", "I put it in the shared calendar.",
    "Biscuit is coming too.", "We were there until almost {time}.",
    "The weather in {city} was perfect.", "I'll send the photos later.",
    "Apparently it's {num} times busier on weekends.", "Sam says hi.",
)

Maker = Callable[["Slots"], object]


class Slots(dict[str, object]):
    """Template slots filled on first use, so a slot named twice in a template keeps its value
    and `{person.city}` reads the same person as `{person}`."""

    def __init__(self, rng: random.Random, moment: datetime, them: Person) -> None:
        super().__init__(them=them)
        self.rng, self.moment = rng, moment

    def __missing__(self, key: str) -> object:
        value = MAKERS[key.rstrip("0123456789")](self)
        self[key] = value
        return value

    def fill(self, template: str) -> str:
        return template.format_map(self)

    def other_person(self) -> Person:
        taken = {v for v in self.values() if isinstance(v, Person)}
        return self.rng.choice([p for p in CAST if p not in taken])

    def colleague(self) -> Person:
        taken = {v for v in self.values() if isinstance(v, Person)}
        return self.rng.choice([p for p in CAST if p.work and p not in taken])

    def clock(self) -> str:
        hour, minute = self.rng.randint(7, 22), self.rng.choice((0, 0, 15, 30, 30, 45))
        return f"{hour % 12 or 12}:{minute:02d} {'am' if hour < 12 else 'pm'}"

    def date(self) -> str:
        day = self.moment + timedelta(days=self.rng.randint(1, 60))
        return f"{day:%A} {day.day} {day:%B}"


def _pick(options: Sequence[object]) -> Maker:
    """A value not yet used in this template, so a flight never goes from Lisbon to Lisbon."""
    def pick(slots: Slots) -> object:
        used = set(slots.values())
        return slots.rng.choice([o for o in options if o not in used] or options)
    return pick


WORK_USER = (
    "{colleague} said the design review with the {city} team moved to {day} at {time}.",
    "Can we move our 1:1 about the {project} to {day}? {time} works better for me.",
    "Could you send me the notes from the {project} sync? I missed the last {mins} minutes.",
    "I pushed a first cut of the {project} doc, {num} open questions at the bottom.",
    "The {project} numbers look off by about {pct} percent, can you double-check them?",
    "I'm flying to {city} on {date} for the {org} workshop, back by {day}.",
    "Heads up: {colleague} is out until {date}, so the {project} review waits for them.",
    "Great demo today! {colleague} wants to show the {project} to {org} next {day}.",
    "I'll be offline {day} morning for my {health}, back online around {time}.",
    "Do you have the slides {colleague} used for the {project} kickoff?",
    "Lunch at {restaurant} on {day}? We can go over the {project} there.",
    "I think we should cut scope on the {project}; {num} of the tickets can wait a quarter.",
    "The {org} call went well, they want a proposal for the {project} by {date}.",
)
WORK_THEM = (
    "The design review with the {city} team moved to {day} at {time}.",
    "Finished the first draft of the {project} doc, {num} pages, comments welcome by {day}.",
    "Can you review my pull request for the {project} before {time}?",
    "Reminder: the {project} retro is on {date}, {colleague} is facilitating.",
    "{colleague} asked whether the {project} is still on track for {month}.",
    "I booked the big meeting room for {day} at {time} for the {project} planning.",
    "The {project} deadline moved to {date}, I updated the tracker.",
    "We hit {pct} percent of the target on the {project} this sprint, not bad.",
    "I'm in {city} until {date} for the {org} conference, let's sync after.",
    "Could you cover the {project} standup on {day}? I have my {health} then.",
    "Budget for the {project} got approved, {price} for contractors this quarter.",
    "I sketched three options for the {project}, {colleague} likes the second one.",
    "Team dinner at {restaurant} on {day} at {time}, {colleague} is organising.",
)
LIFE_USER = (
    "Are we still on for dinner at {restaurant} on {day}? I booked a table for {num} at {time}.",
    "I just got back from {city}. The {food} there was unreal, photos on {day}.",
    "I finished {book} on the way back from {city}. The ending hit me harder than expected.",
    "I signed up for {activity} on {day} evenings, {num} weeks for {price}.",
    "{pet} ate half a sock again, so we're at the vet on {day} at {time}.",
    "Do you still have {person}'s tip for a place to stay in {city}?",
    "My {health} is on {date} at {time}, so I can't do brunch that day.",
    "I tried your {food} recipe, it took {mins} minutes and everyone asked for seconds.",
    "Running update: {km} km this morning along {place}, the knee felt fine.",
    "I ran into {person} at {place}, they're moving to {city} in {month}.",
    "So far the {city} trip is flights {price} and the flat {price2} for {num} nights.",
    "I watched {show} on your recommendation, {num} episodes in one sitting with {person}.",
    "Reminder that {event} is on {date}; I'm bringing {food}.",
    "I love {activity}, I've been going {num} times a week since {month}.",
    "My sister is visiting from Edinburgh on {date}, want to join us at {restaurant}?",
    "Happy birthday, {them}! Drinks at {restaurant} on {day}, {person} is coming too.",
    "How was {them.city}? Did you make it to the place {person} recommended?",
    "I'm reading {book} by {book.author} for book club, {num} chapters to go.",
)
LIFE_THEM = (
    "Have you tried {restaurant}? Their {food} is the best I've had since {city}.",
    "{person} is organising {event} on {date}, are you in?",
    "Booked the {city} trip: we leave on {date}, {num} nights, it came to {price} each.",
    "The {health} went fine, they want to see me again in {num} weeks, around {date}.",
    "I started {book} by {book.author} on the train to {city}, you were right about it.",
    "Dinner at {restaurant} on {day}? {person} said they can do {time}.",
    "Work at {them.org} is hectic, I won't make {activity} on {day}.",
    "Want to go {activity} on {day}? I found a spot near {place}.",
    "Did you see {person}'s photos from {city}? The {food} looked amazing.",
    "I'm {num} weeks into {them.hobby} and {person} says I can skip the beginners' group.",
    "Our flight to {city} got delayed by {mins} minutes, we land at {time} now.",
    "Could you water my plants while I'm in {city}? {person} has the spare set.",
    "Made {food} for {num} people tonight, way too much left over.",
    "{person} told me {pet} saw the vet on {day}. Is the {km} kg diet working?",
    "The {event} photos are up, {person} looks fantastic in all of them.",
    "It was {temp} degrees in {them.city} on {day}, I spent the afternoon at {place}.",
    "Are you still coming to {event}? We need a headcount by {day}.",
    "I think you'd like {show}, {person} and I watched {num} episodes yesterday.",
)
CHANNELS = {True: ("chat:slack", "chat:slack", "chat:teams"),
            False: ("chat:signal", "chat:whatsapp", "chat:imessage")}

NOTES = (
    "Packing list for {city} ({date}):\n- passport\n- {item}\n- {item2}\n- {item3}\n"
    "- {num} pairs of socks\n- charger",
    "How to descale the espresso machine:\n1. Empty the tank and mix {num}00 ml of water "
    "with the descaler.\n2. Run half through the steam wand, wait {mins} minutes.\n"
    "3. Run the rest through the group head.\n4. Rinse twice with clean water.",
    "Meeting notes, {project}, {date}: {colleague} wants a decision on scope by {day}. "
    "{colleague2} owns the rollout plan. Risks: vendor delays, {num} open bugs. "
    "Next check-in {day2} at {time}.",
    "Book notes: {book} by {book.author}. Favourite idea: attention is the real budget. "
    "Recommended by {person}. Rating {stars} out of 5.",
    "Recipe for {food} (serves {num}). First, soak and prep everything for {mins} minutes. "
    "Then cook on medium heat, stirring often. Finally, rest it for five minutes and serve "
    "with lemon.",
    "Gift ideas for {person}: something for {person.hobby}, a book like {book}, dinner at "
    "{restaurant}. Budget around {price}.",
    "Quarterly budget check: rent {price}, groceries {price2}, travel {price3}, savings up "
    "{pct} percent on last quarter. Cut back on eating out at {restaurant}.",
    "Journal, {date}. Went {activity} with {person} at {place}, felt {feeling}. "
    "Need to sleep earlier, {pet} woke me at six again.",
    "Ideas for the {project}:\n- talk to {colleague} about the {city} rollout\n"
    "- simplify the first screen\n- measure drop-off after {num} days",
    "Steps to renew the residence permit:\n1. Book a slot online, {day} mornings are free.\n"
    "2. Bring {num} passport photos and the rental contract from {person}.\n"
    "3. Pay the {price} fee at the counter.\n4. Pick up the card after {num2} weeks.",
    "{pet}'s vet schedule: booster on {date}, flea treatment every {num} weeks, "
    "weight last time was {km} kg. Clara says cut the treats.",
    "Things to ask {person} about {city}: best neighbourhood to stay, whether {restaurant} "
    "still exists, how long the train from the airport takes.",
    "Training plan week {num}: {km} km long run on {day}, intervals on {day2}, "
    "rest after the {activity} session. Coach {person} says keep the easy runs easy.",
    "Reading list on {topic}: {book} by {book.author}, the long essay {person} sent, "
    "and the {org} report from {month}.",
    "Weekend plan: {activity} at {place} on Saturday morning, {food} with {person} at "
    "{time}, laundry, call Mum on Sunday.",
    "How to set up the new router ({person} helped on {date}): first, plug it in and wait "
    "{mins} seconds. Then open the admin page from the sticker. Next, rename the network to "
    "{pet} {num}. Finally, restart the laptop.",
    "Thoughts after {event}: {person} and {person2} finally met, {num} people stayed past "
    "midnight, and the {food} ran out first.",
)

SCREENS: tuple[tuple[str, str, str], ...] = (
    ("Mail", "{subject} - Inbox",
     "Inbox (3{num})\nFrom: {person.full}\nTo: me\nDate: {date}, {time}\nSubject: {subject}\n\n"
     "Hi,\n{body}\nBest,\n{person}"),
    ("Calendar", "Calendar - Week of {date}",
     "{month}\nMon  Tue  Wed  Thu  Fri\n9:30 am  Standup\n{time}  {project} review with "
     "{person}\n1:00 pm  Lunch at {restaurant}\n{time2}  {health}\n7:00 pm  {activity}"),
    ("Visual Studio Code", "{module}.py - {project}",
     "EXPLORER\n{module}.py  tests  README.md\n"
     "def {module}(rows, limit={num}):\n    \"\"\"Part of the {project}.\"\"\"\n"
     "    kept = [r for r in rows if r.score > 0.{pct}]\n    return kept[:limit]\n"
     "Ln {num2}{pct}, Col {num3}  Python  main"),
    ("Firefox", "Things to do in {city} | Travel guide",
     "Things to do in {city}\nHome > Destinations > {city}\n1. Old town walking tour "
     "({num} hours)\n2. Day trip to the coast, from {price}\n3. Food market tour, try the "
     "{food}\nBest time to visit: {month}. Average high {temp} C."),
    ("Firefox", "Flights to {city}",
     "Flights  {city0} to {city}\n{date}  {num} adults  Economy\n"
     "Dep {time}  Arr {time2}  Nonstop  {price}\nDep {time3}  1 stop  {price2}\nSort by: cheapest"),
    ("Chrome", "{restaurant} - Reviews",
     "{restaurant}\n{rating} stars  ({num}{pct} reviews)\nKnown for the {food}\n"
     "\"Came here with friends after {event}, the staff were lovely.\"\nOpen until {time}"),
    ("Chrome", "{topic} - Long read",
     "{topic}: what {num} years of research say\n{num2} min read\n"
     "Most people overestimate how much {topic} changes in a year and underestimate a decade.\n"
     "{article}\nRelated: {topic2}"),
    ("Slack", "{project} - Northwind Labs",
     "# {project}\n{colleague}  {time}\nshipped the fix, {pct} percent fewer errors since\n"
     "{colleague2}  {time2}\nnice! can we demo it {day}?\n{num} replies"),
    ("Sheets", "{project} tracker",
     "{project} tracker\nTask  Owner  Due  Status\nScope doc  {colleague}  {date}  Done\n"
     "Vendor call  {colleague2}  {day}  In progress\nBudget  {colleague3}  {month}  Not started\n"
     "Total spend {price}"),
    ("Maps", "{restaurant} - Directions",
     "Directions to {restaurant}\nFrom {place}\n{mins} min by tram  {km} km\n"
     "Leave at {time} to arrive on time\nBusy around {time2}"),
)
SUBJECTS = (
    "{project} review moved to {day}", "Notes from the {city} visit", "Re: {event} plans",
    "Your {health} on {date}", "Draft agenda for {project}", "Photos from {city}",
    "Book club: {book} on {day}", "Invitation: {org} workshop", "Re: dinner at {restaurant}",
)
BODIES = (
    "The {project} review with the {city} team is now on {day} at {time}. {detail}",
    "Thanks again for coming to {event}. {person2} is still talking about the {food}.",
    "Attached are the numbers for the {project}; we are {pct} percent ahead of plan.",
    "A quick reminder that your {health} is on {date} at {time}. Please arrive early.",
    "We would love to have you at the {org} workshop in {city} on {date}. {detail}",
    "Sending the photos from {city} as promised. {detail}",
)
ARTICLE = (
    "A study from {org} followed {num}00 people for {num2} years.",
    "The effect was largest in {city}, where it changed by {pct} percent.",
    "Critics point out that the early numbers were collected in {month} only.",
    "One researcher compared it to learning {activity}: slow, then suddenly easy.",
    "{person.full}, a {person.job} in {person.city}, told us the hardest part is starting.",
    "The cheapest option costs about {price} a year, the best one {price2}.",
    "Readers asked whether this holds outside {city}; the short answer is mostly yes.",
    "In a survey of {num3}0 households, {pct} percent said they had tried it at least once.",
    "The authors admit the sample was small and skewed towards people under {num4}0.",
    "What seems to matter most is consistency: {mins} minutes a day beats a long weekend.",
)
MODULES = ("retention_job", "billing_sync", "search_rank", "survey_export", "dashboard_feed",
           "onboarding_flow", "vendor_import")
CHAT_SHARE, NOTE_SHARE = 0.6, 0.2
TURNS = (1, 4)
"""Turns per conversation, drawn uniformly; the chat share counts turns, not conversations."""

MAKERS: dict[str, Maker] = {
    "person": Slots.other_person, "colleague": Slots.colleague, "city": _pick(CITIES),
    "place": _pick(PLACES),
    "restaurant": _pick(RESTAURANTS), "org": _pick(ORGS), "project": _pick(PROJECTS),
    "food": _pick(FOODS), "activity": _pick(ACTIVITIES), "topic": _pick(TOPICS),
    "book": _pick(BOOKS), "event": _pick(EVENTS), "health": _pick(HEALTH), "show": _pick(SHOWS),
    "item": _pick(ITEMS), "feeling": _pick(FEELINGS), "day": _pick(WEEKDAYS), "pet": _pick(PETS),
    "time": Slots.clock, "date": Slots.date,
    "month": lambda s: f"{s.moment + timedelta(days=s.rng.randint(20, 120)):%B}",
    "num": lambda s: s.rng.randint(2, 12), "mins": lambda s: s.rng.choice(range(10, 95, 5)),
    "km": lambda s: f"{s.rng.randint(30, 260) / 10:.1f}",
    "price": lambda s: f"€{s.rng.randint(12, 900)}", "pct": lambda s: s.rng.randint(3, 40),
    "temp": lambda s: s.rng.randint(4, 34), "rating": lambda s: f"4.{s.rng.randint(0, 9)}",
    "stars": lambda s: s.rng.randint(2, 5), "module": _pick(MODULES),
    "detail": lambda s: s.fill(s.rng.choice(DETAILS)),
    "subject": lambda s: s.fill(s.rng.choice(SUBJECTS)),
    "body": lambda s: s.fill(s.rng.choice(BODIES)),
    "article": lambda s: " ".join(s.fill(line) for line in s.rng.sample(ARTICLE, 6)),
}

QUESTIONS = (
    "when did I last have dinner with {person}?", "what did {person} say about the {city} trip?",
    "notes about the {project}", "who recommended {book}?", "where does {person} work?",
    "what restaurant did {person} suggest in {city}?", "what's the status of the {project}?",
    "when is my next {health}?", "what did I think of {book}?", "how do I descale the espresso "
    "machine?", "packing list for {city}", "when is {event}?", "who is coming to {event}?",
    "what did {person} and I talk about last week?", "how much did the {city} trip cost?",
    "what does {person} do for a living?", "which emails mentioned the {project}?",
    "when did I go {activity} with {person}?", "what's {person}'s hobby?",
    "what was the deadline for the {project}?", "what did I read about {topic}?",
    "how is {pet} doing at the vet?", "what did I cook with {food}?",
    "reviews of {restaurant}", "flights to {city} in {month}", "what did I do last weekend?",
    "when was the {project} review moved?", "what city does {person} live in?",
    "meeting notes from the {project} in {month}", "what shows did {person} recommend?",
)


def conversation_odds(chat_share: float = CHAT_SHARE) -> float:
    """How often an episode is a conversation, so that turns make up `chat_share` of events."""
    turns = sum(TURNS) / 2
    return chat_share / (turns * (1 - chat_share) + chat_share)


def events_per_episode() -> float:
    odds = conversation_odds()
    return odds * sum(TURNS) / 2 + 1 - odds


class Timeline:
    """Strictly increasing moments in waking hours, spread so `expected` events fill `days`."""

    def __init__(self, rng: random.Random, expected: int, start: datetime, days: int) -> None:
        self.rng, self.start = rng, start
        self.mean_gap = days * WAKING_S / max(1.0, expected / events_per_episode())
        self.active = 0

    def advance(self, mean_s: float | None = None) -> datetime:
        self.active += 1 + int(self.rng.expovariate(1 / (mean_s or self.mean_gap)))
        day, second = divmod(self.active, WAKING_S)
        return self.start + timedelta(days=day, hours=7, seconds=second)


def conversation(rng: random.Random, clock: Timeline, weights: Sequence[float]) -> list[Event]:
    them = rng.choices(CAST, weights)[0]
    source = rng.choice(CHANNELS[them.work])
    thread = f"{them.full} ({source.split(':')[1]})"
    user_turn = rng.random() < 0.5
    turns = []
    for i in range(rng.randint(*TURNS)):
        moment = clock.advance() if i == 0 else clock.advance(mean_s=120)
        work = rng.random() < (0.8 if them.work else 0.1)
        pool = (WORK_USER if work else LIFE_USER) if user_turn else (
            WORK_THEM if work else LIFE_THEM)
        slots = Slots(rng, moment, them)
        text = slots.fill(rng.choice(pool))
        if rng.random() < 0.5:
            text += " " + slots["detail"]
        actor = "user" if user_turn else them.name
        turns.append(Event(source, moment, actor, text, {"thread": thread, "with": them.full}))
        user_turn = not user_turn
    return turns


def note(rng: random.Random, clock: Timeline) -> Event:
    moment = clock.advance()
    text = Slots(rng, moment, rng.choice(CAST)).fill(rng.choice(NOTES))
    title = text.split("\n", 1)[0].split(":", 1)[0].split(". ", 1)[0][:80]
    return Event("note", moment, "user", text, {"title": title})


def screen(rng: random.Random, clock: Timeline) -> Event:
    moment = clock.advance()
    app, title, body = rng.choice(SCREENS)
    slots = Slots(rng, moment, rng.choice(CAST))
    text = slots.fill(body)
    return Event("screen", moment, "user", text, {"app": app, "title": slots.fill(title)})


def popularity() -> list[int]:
    """Each cast member's rank in how often the user chats with them: the partner first, then
    work and personal contacts alternating in the order the cast lists them."""
    partner = [i for i, p in enumerate(CAST) if p.relation == "partner"]
    work = [i for i, p in enumerate(CAST) if p.work]
    life = [i for i, p in enumerate(CAST) if not p.work and i not in partner]
    order = partner + [i for pair in zip_longest(work, life) for i in pair if i is not None]
    return [order.index(i) for i in range(len(CAST))]


def events(seed: int = 7, expected: int = 50_000, start: datetime = START,
           days: int = 730) -> Iterator[Event]:
    """An endless, time-ordered stream; the first `expected` events span about `days` days.

    Who one talks to is skewed (a partner and close colleagues far more than the dentist), so
    some entities recur in thousands of events and others in a few dozen.
    """
    rng = random.Random(seed)
    clock = Timeline(rng, expected, start, days)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(CAST))]
    weights = [weights[rank] for rank in popularity()]
    odds, note_odds = conversation_odds(), NOTE_SHARE / (1 - CHAT_SHARE)
    while True:
        if rng.random() < odds:
            yield from conversation(rng, clock, weights)
        elif rng.random() < note_odds:
            yield note(rng, clock)
        else:
            yield screen(rng, clock)


def questions(rng: random.Random, n: int) -> list[str]:
    """Distinct queries a user would ask of this memory, over the same people, places and
    projects (distinct, so no query is timed warm from a cache)."""
    moment = START + timedelta(days=rng.randint(0, 700))
    asked: dict[str, None] = {}
    for _ in range(50 * n):
        if len(asked) == n:
            break
        asked[Slots(rng, moment, rng.choice(CAST)).fill(rng.choice(QUESTIONS))] = None
    return list(asked)
