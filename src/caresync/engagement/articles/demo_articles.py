"""Demo health articles: short, medically sensible pieces on the demo's conditions and medicines, plus
general wellness, diet and lifestyle reading. Their keywords (ICD-10 code prefixes, drug names, condition
words) match the demo patients' records, so each patient's feed has something to suggest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.engagement.articles import service
from caresync.engagement.models import Article
from caresync.identity.models import User


@dataclass(frozen=True)
class DemoArticle:
    """One article of the demo set."""

    title: str
    summary: str
    topics: tuple[str, ...]
    keywords: tuple[str, ...]
    body: str


ARTICLES: tuple[DemoArticle, ...] = (
    DemoArticle(
        "Living well with high blood pressure",
        "What the numbers mean, why treatment matters even when you feel fine, and what helps at home.",
        ("diseases", "lifestyle"),
        ("i10", "hypertension", "high blood pressure", "blood pressure", "amlodipine", "ramipril"),
        """High blood pressure (hypertension) rarely causes symptoms, which is why it is often called a
silent condition. Over years, though, it strains the heart, the kidneys, the eyes and the blood vessels of
the brain. Keeping it under control is one of the most effective ways to prevent a stroke or a heart
attack.

## What the numbers mean

A reading has two numbers. The **systolic** (top) number is the pressure while your heart beats; the
**diastolic** (bottom) number is the pressure between beats. For most adults the aim of treatment is a
clinic reading below **140/90 mmHg**, or lower if your doctor advises it.

## Measuring at home

- Sit quietly for five minutes first, back supported, feet flat on the floor.
- Rest your arm on a table so the cuff is at heart level.
- Take two readings a minute apart, morning and evening, for a week before your review.
- Write them down or bring the monitor: a week of home readings tells more than one clinic visit.

## Your medicines

Medicines such as **amlodipine** (a calcium-channel blocker) and **ramipril** (an ACE inhibitor) work
best taken every day at the same time, even when your readings are good: good readings usually mean the
medicine is working. Ankle swelling can occur with amlodipine, and a dry, tickly cough with ramipril; tell
your doctor or pharmacist rather than stopping on your own.

> Seek urgent help for a severe headache with confusion, chest pain, or sudden weakness of the face or
> an arm.
""",
    ),
    DemoArticle(
        "Salt, potassium and your blood pressure",
        "Small, steady changes to what you eat can lower blood pressure as much as a tablet.",
        ("diet", "lifestyle"),
        ("i10", "hypertension", "blood pressure", "salt", "dash diet"),
        """Most of the salt we eat is already in food when we buy it: bread, cheese, processed meats, ready
meals, soups and sauces. Adults should aim for **less than 5 g of salt a day**, about one level teaspoon,
in total.

## Practical swaps

| Instead of | Try |
|---|---|
| Stock cubes and packet sauces | Herbs, garlic, lemon, pepper |
| Salted nuts and crisps | Unsalted nuts, fruit |
| Processed meats | Fresh chicken, fish or pulses |
| Adding salt at the table | Tasting first; most dishes do not need it |

Your taste adapts within a few weeks: food that seemed bland starts to taste normal again.

## Potassium helps too

Fruit, vegetables, beans and lentils are rich in potassium, which helps the body get rid of sodium. An
eating pattern built on them, with whole grains and low-fat dairy (often called the DASH diet), lowers
blood pressure noticeably. If you have kidney disease or take medicines that raise potassium, such as
ramipril, ask your doctor before using potassium-based salt substitutes.
""",
    ),
    DemoArticle(
        "Type 2 diabetes: the first months after diagnosis",
        "What type 2 diabetes is, what your HbA1c means and the checks that protect you in the long run.",
        ("diseases",),
        ("e11", "diabetes", "type 2 diabetes", "hba1c", "blood sugar", "metformin", "empagliflozin"),
        """In type 2 diabetes the body still makes insulin, but it does not work as well as it should, so
sugar (glucose) builds up in the blood. It usually develops slowly, and many people feel well at
diagnosis. Treatment aims to prevent the damage high sugar causes over years to the eyes, kidneys, nerves,
heart and feet.

## Your HbA1c

HbA1c reflects your average blood sugar over the last two to three months. Many people aim for about
**53 mmol/mol (7%)**, but your target is agreed with your care team and depends on your age, other
conditions and treatment.

## Checks worth keeping

1. HbA1c every three to six months.
2. Blood pressure and cholesterol at each review.
3. Kidney blood and urine tests once a year.
4. Eye screening (retinal photographs) once a year.
5. A foot check once a year, and your own look at your feet every day.

## Lifestyle is treatment

Losing even 5 to 10% of your body weight, moving more and cutting down on sugary drinks and refined
carbohydrates can bring blood sugar down substantially; for some people it puts diabetes into remission.
""",
    ),
    DemoArticle(
        "Metformin: getting on with your tablets",
        "How to take metformin, how to avoid stomach upset and when to pause it.",
        ("medications",),
        ("metformin", "e11", "diabetes"),
        """**Metformin** is usually the first medicine for type 2 diabetes. It lowers the amount of sugar
the liver releases and helps the body respond to insulin. On its own it does not cause low blood sugar
(hypoglycaemia).

## Taking it

- Take it **with or just after meals**; this greatly reduces nausea and diarrhoea.
- Doses are usually increased slowly over a few weeks for the same reason.
- If stomach upset persists, ask about a modified-release form, which many people tolerate better.

## When to pause it

If you become dehydrated, for example with vomiting, diarrhoea or a fever that stops you drinking, stop
metformin until you are eating and drinking normally again (24 to 48 hours), then restart. This is part of
the "sick day rules": ask your pharmacist for a written copy. Metformin may also be paused before some
X-ray contrast scans and operations; the team doing the procedure will tell you.

Long-term use can lower vitamin B12 levels, so your doctor may check it from time to time, especially if
you notice tingling in your feet or unusual tiredness.
""",
    ),
    DemoArticle(
        "Empagliflozin and other SGLT2 inhibitors",
        "A diabetes medicine that also protects the heart and kidneys, and the sick-day rules to know.",
        ("medications",),
        ("empagliflozin", "sglt2", "e11", "diabetes"),
        """**Empagliflozin** belongs to the SGLT2 inhibitors. It makes the kidneys pass extra sugar out in
the urine, lowering blood sugar, and it also reduces the risk of heart failure and slows kidney disease.

## What to expect

You may pass urine a little more often at first. Because the urine contains sugar, **genital thrush** is
more common: wash daily with water and a gentle, unperfumed cleanser, and see your pharmacist or doctor if
itching or discharge develops.

## Sick-day rules

Stop empagliflozin if you are unwell and unable to eat or drink normally, and before planned surgery, as
advised by your team. Rarely it can cause **ketoacidosis**, even with normal blood sugar readings. Get
urgent help if you feel very unwell with nausea, vomiting, stomach pain, fast breathing or unusual
drowsiness.
""",
    ),
    DemoArticle(
        "Cholesterol and statins explained",
        "Why your doctor suggested atorvastatin, what to expect and the facts about muscle aches.",
        ("medications", "diseases"),
        ("e78", "cholesterol", "hypercholesterolemia", "hyperlipidaemia", "atorvastatin", "statin"),
        """Cholesterol is carried in the blood by particles called lipoproteins. Too much LDL ("bad")
cholesterol is deposited in artery walls, narrowing them over time and raising the risk of heart attacks
and strokes.

## What statins do

Statins such as **atorvastatin** reduce the liver's production of cholesterol and stabilise existing
plaques. Taken long term, they lower the risk of heart attack and stroke by about a quarter in people at
raised risk. Atorvastatin can be taken at any time of day, but at the same time each day.

## Muscle aches

Muscle aches are common in everyday life, and careful trials show that most aches people notice on statins
happen just as often on dummy tablets. Real statin-related muscle problems are uncommon. If you get
unexplained muscle pain or weakness, tell your doctor: a blood test and a short break or a different dose
often settle the question, and most people can continue a statin.

## Food and lifestyle

Swapping saturated fats (fatty meat, butter, pastries) for olive oil, nuts, oily fish and more fibre helps
alongside the medicine. Avoid large amounts of grapefruit juice with atorvastatin.
""",
    ),
    DemoArticle(
        "Breathing easier with COPD",
        "Using your inhalers well, staying active and recognising a flare-up early.",
        ("diseases", "medications"),
        ("j44", "copd", "chronic obstructive pulmonary disease", "tiotropium", "salbutamol", "inhaler"),
        """Chronic obstructive pulmonary disease (**COPD**) narrows the airways and damages the air sacs of
the lungs, mostly after years of smoking. It cannot be reversed, but the right care keeps people active and
out of hospital.

## Stopping smoking comes first

At any age and any stage, stopping smoking slows the decline of lung function more than any medicine. Ask
your care team about stop-smoking support and medicines: they double your chances of success.

## Your inhalers

- **Tiotropium** is a long-acting inhaler taken once daily, every day, to keep the airways open.
- **Salbutamol** is a reliever for breathlessness: use it when you need it.
- Technique matters more than most people think. Ask a nurse or pharmacist to watch you use your inhaler
  once a year; a spacer helps with aerosol inhalers.

## Pulmonary rehabilitation

A six- to eight-week programme of exercise and education improves breathlessness and quality of life.
Ask to be referred.

> A flare-up (more breathlessness, more or discoloured phlegm) needs prompt review: agree a rescue plan
> with your doctor in advance.
""",
    ),
    DemoArticle(
        "Asthma: control, not just relief",
        "Preventer and reliever inhalers, triggers and your written asthma action plan.",
        ("diseases", "medications"),
        ("j45", "asthma", "salbutamol", "inhaler", "wheeze"),
        """Asthma is inflammation of the airways that makes them narrow and twitchy, causing wheeze, cough,
chest tightness and breathlessness. Well-controlled asthma should hardly interfere with your life.

## Preventer and reliever

The **preventer** (usually an inhaled steroid) treats the inflammation and must be used every day, even
when you feel well. The **reliever**, such as **salbutamol**, opens the airways within minutes. Needing
your reliever three or more times a week is a sign that your asthma is not controlled: book a review.

## Know your triggers

Common triggers are colds, pollen, dust mites, pets, cold air, smoke and exercise. You cannot avoid them
all, but good preventer treatment makes you much less sensitive to them.

## Your action plan

Everyone with asthma should have a written action plan that says what to do when symptoms get worse and
when to seek emergency help. If your reliever is not helping, or you are too breathless to speak, call the
emergency services.
""",
    ),
    DemoArticle(
        "Atrial fibrillation and anticoagulation",
        "Why an irregular heartbeat raises the risk of stroke, and living safely with apixaban.",
        ("diseases", "medications"),
        ("i48", "atrial fibrillation", "apixaban", "anticoagulant", "bisoprolol"),
        """In **atrial fibrillation** (AF) the upper chambers of the heart beat irregularly and often fast.
Some people feel palpitations or breathlessness; others feel nothing. Because blood can pool and clot in
the heart, AF raises the risk of stroke about five-fold.

## Anticoagulants prevent strokes

Anticoagulants such as **apixaban** make the blood less likely to clot and prevent most AF-related
strokes. Apixaban is taken twice a day, about twelve hours apart. Missing doses quickly removes the
protection, so a pill organiser or a phone reminder is worth using.

## Staying safe

- Tell every doctor, dentist and pharmacist that you take an anticoagulant.
- Avoid anti-inflammatory painkillers such as ibuprofen unless your doctor agrees; paracetamol is usually
  safer.
- Seek urgent help for black stools, vomiting blood, blood in the urine, or a head injury.

Rate-control medicines such as **bisoprolol** slow the heart and ease symptoms; some people are also
offered treatments to restore a normal rhythm.
""",
    ),
    DemoArticle(
        "Depression and anxiety: treatment that works",
        "Talking therapies, antidepressants such as sertraline and escitalopram, and what to expect.",
        ("diseases", "medications"),
        ("f32", "f41", "depression", "anxiety", "sertraline", "escitalopram", "ssri"),
        """Depression and anxiety are common, real illnesses, not a weakness. Both respond well to
treatment, and most people recover.

## Talking therapies

Cognitive behavioural therapy (CBT) helps you notice and change patterns of thinking and behaviour that
keep low mood or worry going. It works as well as medicines for many people, and its benefits last.

## Antidepressants

**Sertraline** and **escitalopram** are SSRIs, the most widely used antidepressants. Some points to know:

1. They take **two to six weeks** to help; side effects such as nausea or unsettled sleep often come
   first and usually fade.
2. They are not addictive, but stopping suddenly can cause dizziness and irritability: reduce slowly with
   your doctor when the time comes.
3. Treatment usually continues for at least six months after you feel well, to prevent a relapse.

If you have thoughts of harming yourself, tell someone now: your doctor, a helpline or the emergency
services. You do not have to wait for your next appointment.
""",
    ),
    DemoArticle(
        "Heartburn and reflux: when to take omeprazole",
        "Easing reflux with everyday changes, and using proton pump inhibitors wisely.",
        ("diseases", "medications", "diet"),
        ("k21", "reflux", "gerd", "gord", "heartburn", "omeprazole"),
        """Gastro-oesophageal reflux disease (**GERD**) happens when stomach acid flows back into the
gullet, causing heartburn, an acid taste or a cough at night.

## Everyday changes

- Eat smaller meals, and finish eating three hours before bed.
- Raise the head of the bed by 10 to 20 cm.
- Cut down on alcohol, coffee, chocolate and fatty or spicy meals if they trigger symptoms.
- Losing weight and stopping smoking both reduce reflux.

## Omeprazole

**Omeprazole** reduces acid production. It works best taken **30 to 60 minutes before breakfast**. After
a course of four to eight weeks many people can step down to the lowest dose that keeps them comfortable,
or take it only when needed; review it with your doctor rather than continuing indefinitely by default.

See a doctor promptly if you have difficulty swallowing, weight loss, vomiting, or black stools.
""",
    ),
    DemoArticle(
        "Iron-deficiency anaemia and iron tablets",
        "Why iron runs low, which foods help and how to take ferrous sulfate for the best effect.",
        ("diseases", "medications", "diet"),
        ("d50", "anaemia", "anemia", "iron deficiency", "ferrous sulfate", "iron"),
        """Iron is needed to make haemoglobin, which carries oxygen in the blood. When iron runs low you may
feel tired, breathless on exertion, or notice a fast heartbeat or pale skin. Your doctor will also look
for the cause, such as heavy periods or bleeding from the gut.

## Taking ferrous sulfate

- Iron is absorbed best on an **empty stomach**; if it upsets you, take it with a little food.
- Vitamin C (a glass of orange juice) helps absorption; tea, coffee, milk and antacids reduce it, so keep
  them two hours apart.
- Taking iron **once a day, or on alternate days**, is absorbed as well as more frequent doses, with
  fewer side effects.
- Dark stools are expected. Constipation is common: drink well and add fibre.

## Foods rich in iron

Red meat, fish, beans, lentils, dark green vegetables and fortified cereals. A blood test after about four
weeks shows whether the treatment is working; tablets usually continue for three months after levels
return to normal, to rebuild stores.
""",
    ),
    DemoArticle(
        "Caring for eczema-prone skin",
        "Daily emollients, using hydrocortisone correctly and handling flare-ups.",
        ("diseases", "medications"),
        ("l20", "eczema", "atopic dermatitis", "dermatitis", "hydrocortisone", "emollient"),
        """Eczema (atopic dermatitis) makes the skin dry, itchy and inflamed. It tends to come and go in
flare-ups, and the skin barrier is weaker even between them.

## Emollients every day

Moisturisers (emollients) are the foundation of treatment. Apply them generously, in the direction of hair
growth, at least twice a day and after washing. Use them instead of soap, which dries the skin.

## Hydrocortisone for flares

**Hydrocortisone** cream is a mild steroid that calms a flare. Apply a thin layer once or twice a day to
the inflamed areas only, for up to seven days, then return to emollients alone. Used this way it is safe;
the risk from under-treating a flare (infection, sleepless nights) is greater than the risk of the cream.
Wait about 30 minutes between the emollient and the steroid.

See your doctor if the skin weeps, crusts or becomes painful, which can mean infection, or if flares keep
returning despite treatment.
""",
    ),
    DemoArticle(
        "Urinary tract infections: prevention and treatment",
        "Recognising a UTI, finishing your treatment and reducing the chance it comes back.",
        ("diseases",),
        ("n39", "uti", "urinary tract infection", "cystitis", "fosfomycin"),
        """A urinary tract infection (**UTI**) of the bladder, or cystitis, causes burning when passing
urine, needing to go often and urgently, and sometimes lower tummy pain or cloudy urine.

## Treatment

Uncomplicated cystitis in women is often treated with a short course of antibiotics, such as a single dose
of **fosfomycin**. Symptoms usually improve within two or three days. Drinking enough fluid and taking
paracetamol help meanwhile.

## Seek help promptly if

- you have a fever, shivering, or pain in your back or side (possible kidney infection);
- you are pregnant, male, or the symptoms return soon after treatment;
- you see blood in the urine.

## Preventing another one

Drink enough to keep your urine pale, do not hold on when you need to go, empty your bladder after sex,
and wipe front to back. If infections keep coming back, your doctor can discuss further options.
""",
    ),
    DemoArticle(
        "Thirty minutes a day: making movement a habit",
        "How much activity adults need, and simple ways to build it into a busy week.",
        ("wellness", "lifestyle"),
        ("exercise", "physical activity", "walking", "e11", "i10", "j44"),
        """Regular physical activity lowers the risk of heart disease, stroke, type 2 diabetes, depression and
several cancers, and helps people with long-term conditions feel better.

## How much?

Adults should aim for at least **150 minutes of moderate activity a week**, such as brisk walking or
cycling, where you can talk but not sing, plus muscle-strengthening activities on two days. Any amount is
better than none, and short bouts of ten minutes count.

## Making it stick

- Link activity to something you already do: walk after lunch, take the stairs at work.
- Log it: a streak on a calendar, or in CareSync's activity tracker, is motivating.
- Choose something you enjoy; dancing and gardening count.
- Start gently and build up, especially if you have a heart or lung condition; ask your care team what is
  safe for you.

Stop and seek advice if you get chest pain, unusual breathlessness or dizziness while exercising.
""",
    ),
    DemoArticle(
        "Sleep well: habits that help",
        "Simple, evidence-based steps to better sleep, without tablets.",
        ("wellness", "lifestyle"),
        ("sleep", "insomnia", "f41", "anxiety"),
        """Good sleep supports memory, mood, blood pressure and blood-sugar control. Most adults need seven
to nine hours.

## Habits that help

1. Get up at the same time every day, including weekends.
2. Get daylight in the morning and stay active during the day.
3. Avoid caffeine after early afternoon, and alcohol close to bedtime: it fragments sleep.
4. Keep the bedroom dark, quiet and cool; keep phones out of the bed.
5. If you cannot sleep after about 20 minutes, get up, do something calm in dim light and return when
   sleepy.

Sleeping tablets help only briefly and can cause dependence. If poor sleep lasts more than three months,
ask about **CBT for insomnia**, the most effective long-term treatment. Loud snoring with pauses in
breathing or daytime sleepiness can mean sleep apnoea, which should be checked.
""",
    ),
    DemoArticle(
        "Eating well on a plate",
        "A simple way to build balanced meals that suit most long-term conditions.",
        ("wellness", "diet"),
        ("healthy eating", "nutrition", "diet", "weight", "e11", "e78"),
        """You do not need a special diet to eat well. A simple picture of a plate helps at most meals:

- **Half** vegetables and fruit, in different colours.
- **A quarter** whole grains or starchy foods: brown rice, wholemeal bread, potatoes with their skins.
- **A quarter** protein: fish, beans, lentils, eggs, poultry, or a little lean meat.
- A little olive oil or other vegetable oil, and water to drink.

## Easy improvements

Eat fish twice a week, one of them oily (sardines, mackerel, salmon). Keep sugary drinks, sweets and
processed meats for occasional treats. Read labels for salt, sugar and saturated fat; many foods that look
healthy are not.

If you have diabetes, kidney disease or a food allergy, a dietitian can tailor this to you.
""",
    ),
)


def create_demo_articles(session: Session, author_id: uuid.UUID) -> int:
    """Publish the demo articles written by ``author_id`` (a staff member who writes articles); articles
    whose title already exists are skipped, so running it twice adds nothing. Returns how many it added."""
    author = session.get(User, author_id)
    if author is None:
        raise ValueError(f"No user {author_id}.")
    principal = Principal(
        user_id=author.id,
        role=author.role,
        full_name=author.full_name,
        organisation_id=author.organisation_id,
    )
    existing = set(session.execute(select(Article.title)).scalars())
    added = 0
    for item in ARTICLES:
        if item.title in existing:
            continue
        data = service.ArticleInput(
            title=item.title,
            summary=item.summary,
            body_markdown=item.body,
            topics=item.topics,
            keywords=item.keywords,
        )
        service.create(session, principal, data, publish=True)
        added += 1
    return added
