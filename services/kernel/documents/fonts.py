"""The Chinese font documents are set in: Noto Serif SC (SIL OFL 1.1), installed from PyPI with the project
(``pylopdf-fonts-zh-cn``), never fetched at run time.

The font is CID-keyed OpenType/CFF. Embedded as it is, PDF libraries write an encoding CMap that common text
extractors (pypdf, pdfminer.six) misread, so the text of the document could not be copied or checked. For each
document the font is subset to the characters it uses and its outlines converted to TrueType quadratics
(fontTools' cu2qu, within 1/1000 em), which every PDF reader and extractor handles (Identity-H with a ToUnicode map).
"""

import io
import logging
from functools import cache
from pathlib import Path

from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.subset import Options, Subsetter
from fontTools.ttLib import TTFont, newTable

# Characters every document may print besides its text: ASCII and the punctuation of the layout.
BASE_CHARACTERS = "".join(chr(c) for c in range(0x20, 0x7F)) + "〔〕（）《》、，。：；“”·—￥"
MAX_CONVERSION_ERROR_EM = 0.001

# fontTools logs each table it subsets at INFO: a dozen lines per document in the service's log.
logging.getLogger("fontTools").setLevel(logging.WARNING)


@cache
def serif_font_path() -> Path:
    import pylopdf_fonts_zh_cn  # the font package; imported here so only rendering needs it

    path = Path(pylopdf_fonts_zh_cn.serif_path())
    if not path.is_file():
        raise RuntimeError(f"中文字体文件缺失：{path}（请重新安装 pylopdf-fonts-zh-cn）")
    return path


def subset_truetype(text: str) -> bytes:
    """The serif font reduced to the characters of ``text`` (plus ``BASE_CHARACTERS``), as TrueType bytes."""
    font = TTFont(serif_font_path(), lazy=True, recalcTimestamp=False)  # same text, same bytes
    options = Options()
    options.notdef_outline = True
    options.layout_features = []  # horizontal text set glyph by glyph: no shaping features needed
    options.desubroutinize = True
    options.name_IDs = ["*"]
    subsetter = Subsetter(options)
    subsetter.populate(text=text + BASE_CHARACTERS)
    subsetter.subset(font)
    if "CFF " in font:
        _cff_to_truetype(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _cff_to_truetype(font: TTFont) -> None:
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    max_error = font["head"].unitsPerEm * MAX_CONVERSION_ERROR_EM
    glyf = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        # PostScript outlines run counter-clockwise, TrueType ones clockwise.
        glyphs[name].draw(Cu2QuPen(pen, max_error, reverse_direction=True))
        glyf[name] = pen.glyph()
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    font["glyf"], font["loca"] = glyf, newTable("loca")
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attribute in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                      "maxStackElements", "maxSizeOfInstructions", "maxComponentElements", "maxComponentDepth"):
        setattr(maxp, attribute, 0)
    maxp.maxZones = 1
    font["head"].indexToLocFormat = 0
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType, post.extraNames, post.mapping = 2.0, [], {}
    font.sfntVersion = "\x00\x01\x00\x00"
