#!/usr/bin/env python3
"""Generates the binary and non-UTF-8 documents in samples/.

Writes, into samples/ (or the directory given as the first argument):

  volcans-auvergne.txt       French plain text encoded in windows-1252 (cp1252), CRLF line ends
  printing-press.pdf         a 3-page PDF made with fpdf2
  bicycle-tyre-repair.docx   a Word document with headings, lists and a table, made with python-docx

The Markdown, HTML and UTF-8 text samples are written by hand and committed as they are.
All text here was written for ragmill and is dedicated to the public domain (CC0 1.0).

Requirements: pip install fpdf2 python-docx
Usage:        python3 scripts/make-samples.py [OUT_DIR]
"""

import datetime
import os
import sys

try:
    from fpdf import FPDF
    import fpdf
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH  # noqa: F401  (checks python-docx is complete)
except ImportError as e:
    sys.exit(f"make-samples.py: missing package ({e.name}); run: pip install fpdf2 python-docx")

# A fixed date keeps the generated files' metadata stable between runs.
FIXED_DATE = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)

# ---------------------------------------------------------------------------------------------
# windows-1252 French text. It deliberately uses characters whose bytes differ between
# windows-1252 and ISO-8859-1 (’ « » œ … –), so a decoder that guesses Latin-1 shows mojibake.
VOLCANS = """LES VOLCANS D’AUVERGNE

La chaîne des Puys, à l’ouest de Clermont-Ferrand, aligne sur une trentaine de kilomètres
environ quatre-vingts volcans endormis. Vue du sommet du puy de Dôme, elle ressemble à une
procession de cônes réguliers, de dômes arrondis et de cratères couverts d’herbe et de forêts.
Ces volcans sont jeunes à l’échelle géologique : la plupart se sont formés entre 95 000 et
8 000 ans avant notre ère, et le plus récent, le puy de la Vache avec son voisin le puy de
Lassolas, n’a guère plus de huit mille ans.

Trois familles de volcans

On distingue dans la chaîne des Puys trois grands types d’édifices, qui correspondent à des
laves de composition différente.

Les cônes de scories, les plus nombreux, sont nés d’éruptions de basalte, une lave fluide et
pauvre en silice. Les gaz s’échappent facilement ; la lave est projetée en gerbes qui
retombent autour de la bouche sous forme de scories, la « pouzzolane » rouge ou noire que l’on
exploite encore dans la région. Le puy Pariou, avec son cratère parfait de près de cent mètres
de profondeur, en est l’exemple le plus célèbre. Ces éruptions ont aussi émis de longues
coulées qui ont barré des vallées et créé des lacs, comme le lac d’Aydat.

Les dômes, comme le puy de Dôme lui-même, sont faits d’une lave très visqueuse et riche en
silice, la trachyte. Trop épaisse pour couler, elle s’est accumulée au-dessus de la bouche
comme une pâte que l’on presse hors d’un tube. Ces éruptions sont souvent explosives : les gaz
piégés dans la lave épaisse finissent par la faire éclater, et des nuées ardentes peuvent
dévaler les pentes.

Les maars, enfin, sont des cratères d’explosion creusés lorsque le magma rencontre une nappe
d’eau souterraine. L’eau se vaporise brutalement, pulvérise la roche, et laisse un large
cratère peu élevé qui se remplit souvent d’eau : le gour de Tazenat en est un bel exemple.

Pourquoi des volcans au centre de la France ?

L’Auvergne n’est pas au bord d’une plaque tectonique. Son volcanisme est lié à l’ouverture
du fossé d’effondrement de la Limagne, il y a une trentaine de millions d’années, au moment où
les Alpes se soulevaient. La croûte s’est étirée et amincie ; le manteau chaud sous-jacent est
remonté et a fondu partiellement. Les magmas ainsi produits ont profité des failles pour
atteindre la surface. Plus au sud, le Cantal — le plus grand stratovolcan d’Europe, aujourd’hui
très érodé — et les monts Dore témoignent d’épisodes plus anciens du même phénomène.

Un paysage protégé

En 2018, la chaîne des Puys et la faille de Limagne ont été inscrites au patrimoine mondial de
l’UNESCO, comme exemple exceptionnel de la rupture d’un continent. Les volcans sont aujourd’hui
considérés comme endormis et non éteints : une nouvelle éruption reste possible dans les
prochains millénaires, mais rien n’indique qu’elle soit proche. Les sources d’eaux minérales
gazeuses de Volvic, de Châtel-Guyon ou de Saint-Nectaire rappellent que la chaleur et le gaz
carbonique du sous-sol sont toujours là.

Pour la randonnée, le sentier des muletiers mène au sommet du puy de Dôme en une heure environ ;
le tour du cratère du Pariou demande une demi-journée. Prévoyez de bonnes chaussures, de l’eau
et un coupe-vent : au sommet, le vent souffle fort et la température chute vite, même en été.
On y mange volontiers une truffade ou une potée, et l’on termine par un morceau de
saint-nectaire – un fromage dont l’œil averti reconnaît la croûte fleurie… et le goût de
noisette.
"""

# ---------------------------------------------------------------------------------------------
# PDF: a short history of the printing press. fpdf2's core fonts are Latin-1 only, so this text
# sticks to ASCII punctuation.
PRESS_TITLE = "A Short History of the Printing Press"
PRESS = [
    ("Before Gutenberg", [
        "For most of history, every copy of a book was made by hand. In medieval Europe, scribes in "
        "monasteries and later in university towns copied texts letter by letter, a process that "
        "could take months for a single Bible. Books were rare and expensive, and the number of "
        "copies of any one work was small enough that errors crept in with every generation of "
        "copying.",
        "Printing itself was not new. Woodblock printing, in which a whole page is carved into a "
        "single block, was used in China by the seventh century, and the Diamond Sutra of 868 is "
        "the oldest dated printed book. Around 1040 the Chinese artisan Bi Sheng made movable type "
        "from baked clay, and in Korea the Jikji, printed with movable metal type in 1377, predates "
        "European printing by more than seventy years. But the thousands of characters of Chinese "
        "writing made movable type far less practical there than it would be for an alphabet of a "
        "few dozen letters.",
    ]),
    ("Gutenberg's invention", [
        "Johannes Gutenberg, a goldsmith from Mainz, developed his printing system in the 1440s and "
        "1450s. His achievement was not a single device but a combination of several. He invented a "
        "hand mould that could cast large numbers of identical metal letters quickly and precisely. "
        "He found an alloy of lead, tin and antimony that melted at a low temperature, cast cleanly "
        "and was hard enough to survive repeated printing. He developed an oil-based ink, closer to "
        "a varnish than to the water-based inks of scribes, that would stick to metal type. And he "
        "adapted the screw press, long used for pressing grapes and olives, to press paper evenly "
        "onto the inked type.",
        "The great product of his workshop was the Bible printed around 1455, known as the "
        "Gutenberg Bible or the 42-line Bible. About 180 copies were made, some on paper and some "
        "on vellum, and its quality showed that printed books could match the finest manuscripts. "
        "Gutenberg himself did not grow rich from it: a lawsuit with his financier Johann Fust cost "
        "him much of his equipment, and Fust and Peter Schoeffer carried on the business.",
    ]),
    ("The spread of printing", [
        "Printing spread with remarkable speed. Printers trained in Mainz set up shops along the "
        "trade routes of Europe: in Strasbourg and Cologne, then in Italy, where Subiaco and Venice "
        "became major centres, then in Paris, Lyon and the Low Countries. William Caxton brought "
        "printing to England in 1476. By 1500, presses were at work in more than two hundred and "
        "fifty European towns, and they had produced perhaps twenty million copies of books printed "
        "before 1501, the works historians call incunabula.",
        "Venice became the capital of the new industry. There Aldus Manutius published editions of "
        "the Greek and Latin classics in small, portable formats, introduced the italic typeface, "
        "and helped standardise punctuation, including the modern semicolon. The price of books "
        "fell sharply: a printed book could cost a fraction of a manuscript copy, and for the first "
        "time merchants, lawyers and students could own small libraries.",
    ]),
    ("Consequences", [
        "The effects reached far beyond the book trade. Identical copies meant that scholars in "
        "different cities could refer to the same page and the same text, and errors, once "
        "corrected, stayed corrected. Scientific knowledge could accumulate: tables, diagrams and "
        "observations were reproduced exactly, and the work of astronomers and anatomists such as "
        "Copernicus and Vesalius reached readers all over Europe.",
        "Printing also transformed religion and politics. When Martin Luther posted his theses in "
        "1517, printers turned them and his later pamphlets into bestsellers within weeks, and the "
        "Reformation became the first mass movement of the print age. Vernacular languages gained "
        "prestige as printers chose which spellings and dialects to set in type, slowly "
        "standardising languages such as English and German. Governments and churches, alarmed by "
        "the flood of unlicensed material, responded with censorship and lists of forbidden books.",
    ]),
    ("Later developments", [
        "The wooden hand press changed little for three and a half centuries. In 1800 Lord Stanhope "
        "built a press with an iron frame, and in 1814 The Times of London was printed on Friedrich "
        "Koenig's steam-powered cylinder press, which produced more than a thousand sheets an hour. "
        "The rotary press, paper made from wood pulp, and the Linotype machine of 1886, which cast "
        "whole lines of type from a keyboard, made cheap daily newspapers possible. Offset "
        "lithography dominated the twentieth century, and digital typesetting and printing replaced "
        "metal type altogether.",
        "Even so, the principles Gutenberg combined - standardised, reusable components, mass "
        "production and the cheap duplication of information - remain at the heart of how text is "
        "made and shared, from newspapers to the web.",
    ]),
]

# ---------------------------------------------------------------------------------------------
# DOCX: repairing a punctured bicycle tyre.
TYRE_TITLE = "Repairing a Punctured Bicycle Tyre"
TYRE_INTRO = (
    "A flat tyre is the most common mechanical problem a cyclist meets, and fixing one at the "
    "roadside takes about fifteen minutes with a few simple tools. This guide covers inner-tube "
    "tyres, the kind fitted to most bicycles. The same steps apply to road, hybrid and mountain "
    "bikes; only the valve type and the tyre width differ."
)
TYRE_TOOLS = [
    ("Tyre levers (two or three)", "Lift the tyre bead over the rim without pinching the tube", "Essential"),
    ("Pump or CO2 inflator", "Find the hole and reinflate the repaired tube", "Essential"),
    ("Patch kit", "Glue-on patches, glue, sandpaper; or self-adhesive patches", "Essential"),
    ("Spare inner tube", "Faster than patching at the roadside; patch the old one at home", "Recommended"),
    ("Spanner (15 mm)", "Removing wheels held by axle nuts instead of a quick release", "Bike-dependent"),
    ("Tyre boot", "Temporary cover for a large cut in the tyre casing", "Recommended"),
]
TYRE_STEPS = [
    ("1. Remove the wheel", [
        "Shift to the smallest rear sprocket if the puncture is at the back, so the chain is slack. "
        "Open the brake's quick release if you have rim brakes, then open the wheel's quick-release "
        "lever or thru-axle, or loosen the axle nuts. Pull the rear derailleur back and lift the "
        "wheel out.",
    ]),
    ("2. Take the tyre off", [
        "Let out any remaining air. Push the tyre's beads into the centre channel of the rim all the "
        "way round; this gives you slack. Hook a tyre lever under one bead opposite the valve and "
        "lever it over the rim, clip the lever to a spoke, then use a second lever a few "
        "centimetres along and slide it around the rim until one side of the tyre is free. Pull the "
        "inner tube out, pushing the valve out of the rim last.",
    ]),
    ("3. Find the hole", [
        "Pump some air into the tube and listen for the hiss, or pass the tube close to your lips "
        "or cheek, which are sensitive to moving air. If that fails, submerge the tube in a bowl of "
        "water section by section and watch for a stream of bubbles. Two small holes side by side, "
        "like a snake bite, mean a pinch flat caused by hitting an edge with too little pressure.",
    ]),
    ("4. Find the cause", [
        "This step is the one most often skipped, and skipping it means a second puncture a few "
        "minutes later. Line the tube up with the tyre (the valve marks the position) to see where "
        "the hole was, then run your fingers carefully around the inside of the tyre casing and "
        "look at the outside tread. Remove any thorn, flint or glass. Check that the rim tape "
        "covers every spoke hole: an exposed spoke hole punctures the tube from the inside.",
    ]),
    ("5. Patch or replace the tube", [
        "For a glue-on patch, roughen an area larger than the patch with the sandpaper, spread a thin "
        "layer of glue and wait until it is dry to the touch, usually three to five minutes; this is "
        "what makes the patch bond. Press the patch on firmly from the centre outwards and hold it "
        "for a minute. Self-adhesive patches are quicker but less durable. If the hole is at the "
        "valve base or the tube is split, fit the spare tube instead.",
    ]),
    ("6. Refit the tyre and inflate", [
        "Put a little air in the tube so it holds its shape, push the valve through the rim hole and "
        "tuck the tube into the tyre all the way round. Starting at the valve, push the second bead "
        "onto the rim with your thumbs, working both ways round, and finish opposite the valve. Use "
        "a lever for the last section only if you must, and take care not to pinch the tube. Check "
        "that the tube is not trapped under the bead anywhere, inflate to the pressure printed on "
        "the tyre's sidewall, and refit the wheel, closing the brake release.",
    ]),
]
TYRE_TROUBLE = [
    ("Two small slits side by side", "Pinch flat: tube trapped against the rim", "Run higher pressure; check tyre pressure weekly"),
    ("Hole on the rim side of the tube", "Exposed spoke hole or sharp rim edge", "Replace or reposition the rim tape"),
    ("Repeated flats in the same place", "Object still embedded in the tyre", "Search the casing again, inside and out"),
    ("Patch lifts at the edges", "Glue not left to dry before patching", "Re-patch, waiting until the glue is tacky"),
    ("Slow leak at the valve", "Loose valve core (Presta) or worn valve", "Tighten the core or replace the tube"),
]
TYRE_OUTRO = (
    "Prevention is easier than repair. Keep tyres at the pressure recommended for your weight and "
    "riding, replace tyres when the tread is worn flat or the casing shows through, and consider "
    "puncture-resistant tyres or tubeless sealant if you ride on roads littered with glass or "
    "hawthorn cuttings."
)


def write_volcans(out):
    path = os.path.join(out, "volcans-auvergne.txt")
    data = VOLCANS.replace("\n", "\r\n").encode("cp1252")  # raises if a character has no cp1252 byte
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_pdf(out):
    pdf = FPDF(format="A4")
    pdf.set_title(PRESS_TITLE)
    pdf.set_author("ragmill sample documents")
    pdf.set_subject("History of printing; written for ragmill, CC0 1.0")
    pdf.set_creator(f"scripts/make-samples.py (fpdf2 {fpdf.__version__})")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(25, 25, 25)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, PRESS_TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, paragraphs in PRESS:
        pdf.set_font("Helvetica", "B", 14)
        pdf.ln(3)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11.5)
        for para in paragraphs:
            pdf.multi_cell(0, 6.2, para, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
    path = os.path.join(out, "printing-press.pdf")
    pdf.output(path)
    return path, pdf.page_no()


def write_docx(out):
    d = docx.Document()
    cp = d.core_properties
    cp.title = TYRE_TITLE
    cp.author = "ragmill sample documents"
    cp.comments = "Written for ragmill; CC0 1.0. Generated by scripts/make-samples.py."
    cp.created = FIXED_DATE.replace(tzinfo=None)
    cp.modified = FIXED_DATE.replace(tzinfo=None)
    cp.last_modified_by = "scripts/make-samples.py"
    cp.revision = 1

    d.add_heading(TYRE_TITLE, level=0)
    d.add_paragraph(TYRE_INTRO)

    d.add_heading("What you need", level=1)
    table = d.add_table(rows=1, cols=3)
    table.style = "Light Grid Accent 1"
    for cell, text in zip(table.rows[0].cells, ("Tool", "What it is for", "Priority")):
        cell.text = text
    for row in TYRE_TOOLS:
        cells = table.add_row().cells
        for cell, text in zip(cells, row):
            cell.text = text

    d.add_heading("Step by step", level=1)
    for heading, paragraphs in TYRE_STEPS:
        d.add_heading(heading, level=2)
        for para in paragraphs:
            d.add_paragraph(para)

    d.add_heading("Troubleshooting", level=1)
    t2 = d.add_table(rows=1, cols=3)
    t2.style = "Light Grid Accent 1"
    for cell, text in zip(t2.rows[0].cells, ("Symptom", "Likely cause", "Remedy")):
        cell.text = text
    for row in TYRE_TROUBLE:
        for cell, text in zip(t2.add_row().cells, row):
            cell.text = text

    d.add_heading("Preventing punctures", level=1)
    d.add_paragraph(TYRE_OUTRO)
    d.add_heading("Quick checklist", level=2)
    for item in ("Find and remove the cause before fitting a tube.",
                 "Let patch glue dry until tacky.",
                 "Inflate to the pressure on the sidewall."):
        d.add_paragraph(item, style="List Bullet")

    path = os.path.join(out, "bicycle-tyre-repair.docx")
    d.save(path)
    return path


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "samples")
    os.makedirs(out, exist_ok=True)
    print(f"{write_volcans(out)} (windows-1252)")
    path, pages = write_pdf(out)
    print(f"{path} ({pages} pages, fpdf2 {fpdf.__version__})")
    print(f"{write_docx(out)} (python-docx {docx.__version__ if hasattr(docx, '__version__') else '?'})")


if __name__ == "__main__":
    main()
