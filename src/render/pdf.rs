//! A small page layout over `pdf-writer`: text in the PDF base-14 fonts Helvetica and Helvetica-Bold
//! (every reader has them, so nothing is embedded and no font file ships), left- or right-aligned, rules
//! and filled boxes, and as many A4 pages as the content needs.
//!
//! Text is encoded as WinAnsi (Windows-1252), the encoding those fonts carry: Latin scripts print, and a
//! character outside it prints as `?` rather than failing the document.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.0;
pub const PAGE_HEIGHT: f32 = 842.0;

/// Which of the two fonts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }
}

/// Advance widths (1/1000 em) of the printable ASCII characters, from the fonts' Adobe metrics.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556,
    556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334,
    260, 334, 584,
];
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611,
    556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389,
    280, 389, 584,
];

/// The width of `text` in points at `size`.
pub fn text_width(text: &str, font: Font, size: f32) -> f32 {
    let table = match font {
        Font::Regular => &HELVETICA,
        Font::Bold => &HELVETICA_BOLD,
    };
    let units: u32 = text
        .chars()
        .map(|c| match c as u32 {
            code @ 32..=126 => u32::from(table[(code - 32) as usize]),
            // Accented Latin letters are about as wide as a lower-case letter.
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `text` cut (with "...") to fit `width` points.
pub fn fit(text: &str, font: Font, size: f32, width: f32) -> String {
    if text_width(text, font, size) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if text_width(&format!("{out}..."), font, size) > width {
            out.pop();
            break;
        }
    }
    format!("{out}...")
}

/// `text` in Windows-1252, `?` for what it lacks.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c as u32 {
            code @ (0x20..=0x7e | 0xa0..=0xff) => code as u8,
            _ => match c {
                '€' => 0x80,
                '‚' => 0x82,
                '„' => 0x84,
                '…' => 0x85,
                '‰' => 0x89,
                'Š' => 0x8a,
                'Œ' => 0x8c,
                'Ž' => 0x8e,
                '‘' => 0x91,
                '’' => 0x92,
                '“' => 0x93,
                '”' => 0x94,
                '•' => 0x95,
                '–' => 0x96,
                '—' => 0x97,
                '™' => 0x99,
                'š' => 0x9a,
                'œ' => 0x9c,
                'ž' => 0x9e,
                'Ÿ' => 0x9f,
                _ => b'?',
            },
        })
        .collect()
}

/// A document being laid out, page by page.
pub struct Document {
    pages: Vec<Content>,
    title: String,
}

impl Document {
    pub fn new(title: &str) -> Document {
        Document { pages: vec![Content::new()], title: title.to_string() }
    }

    /// Starts a new page; later drawing goes there.
    pub fn new_page(&mut self) {
        self.pages.push(Content::new());
    }

    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a document has a page")
    }

    /// Text with its baseline starting at (x, y), in gray level `gray` (0 black).
    pub fn text(&mut self, x: f32, y: f32, font: Font, size: f32, gray: f32, text: &str) {
        let bytes = win_ansi(text);
        let page = self.page();
        page.set_fill_gray(gray);
        page.begin_text();
        page.set_font(font.resource(), size);
        page.next_line(x, y);
        page.show(Str(&bytes));
        page.end_text();
    }

    /// Text ending at `right`.
    pub fn text_right(&mut self, right: f32, y: f32, font: Font, size: f32, gray: f32, text: &str) {
        let x = right - text_width(text, font, size);
        self.text(x, y, font, size, gray, text);
    }

    /// A horizontal rule.
    pub fn rule(&mut self, x1: f32, x2: f32, y: f32, width: f32, gray: f32) {
        let page = self.page();
        page.set_stroke_gray(gray);
        page.set_line_width(width);
        page.move_to(x1, y);
        page.line_to(x2, y);
        page.stroke();
    }

    /// A filled box.
    pub fn fill(&mut self, x: f32, y: f32, width: f32, height: f32, gray: f32) {
        let page = self.page();
        page.set_fill_gray(gray);
        page.rect(x, y, width, height);
        page.fill_nonzero();
    }

    /// A line of small gray text at the foot of every page: `line(page, pages)`, counting from 1.
    pub fn footer(&mut self, line: impl Fn(usize, usize) -> String) {
        let pages = self.pages.len();
        for (i, page) in self.pages.iter_mut().enumerate() {
            let bytes = win_ansi(&line(i + 1, pages));
            page.set_fill_gray(0.45);
            page.begin_text();
            page.set_font(Font::Regular.resource(), 7.0);
            page.next_line(50.0, 30.0);
            page.show(Str(&bytes));
            page.end_text();
        }
    }

    /// The PDF file: page streams deflate-compressed, the two fonts shared by every page.
    pub fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first = 6;
        let page_ids: Vec<Ref> = (0..self.pages.len()).map(|i| Ref::new(first + 2 * i as i32)).collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids(page_ids.iter().copied()).count(page_ids.len() as i32);
        for (font, id) in [(Name(b"Helvetica"), regular), (Name(b"Helvetica-Bold"), bold)] {
            pdf.type1_font(id).base_font(font).encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.document_info(info).title(TextStr(&self.title)).producer(TextStr("costd")).finish();
        for (i, content) in self.pages.into_iter().enumerate() {
            let page_id = page_ids[i];
            let content_id = Ref::new(page_id.get() + 1);
            let mut page = pdf.page(page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
            page.parent(tree);
            page.contents(content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Font::Regular.resource(), regular);
            fonts.pair(Font::Bold.resource(), bold);
            fonts.finish();
            resources.finish();
            page.finish();
            let raw = content.finish();
            let compressed = miniz_deflate(&raw);
            pdf.stream(content_id, &compressed).filter(Filter::FlateDecode);
        }
        pdf.finish()
    }
}

/// zlib-wrapped deflate, as `FlateDecode` expects.
fn miniz_deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_text_encodes_as_win_ansi_and_the_rest_as_question_marks() {
        assert_eq!(win_ansi("Größe €5 – ok"), b"Gr\xf6\xdfe \x805 \x96 ok");
        assert_eq!(win_ansi("日本"), b"??");
    }

    #[test]
    fn long_text_is_cut_to_its_column() {
        let cut = fit("Amazon Elastic Compute Cloud - Compute", Font::Regular, 9.0, 80.0);
        assert!(cut.ends_with("...") && text_width(&cut, Font::Regular, 9.0) <= 80.0, "{cut}");
        assert_eq!(fit("EC2", Font::Regular, 9.0, 80.0), "EC2");
    }

    #[test]
    fn a_document_is_a_pdf_with_every_page() {
        let mut d = Document::new("t");
        d.text(50.0, 800.0, Font::Bold, 12.0, 0.0, "Hello");
        d.new_page();
        d.text_right(545.0, 800.0, Font::Regular, 12.0, 0.0, "1.00");
        assert_eq!(d.page_count(), 2);
        let bytes = d.finish();
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/Count 2"), "{text}");
        assert!(text.trim_end().ends_with("%%EOF"));
    }
}
