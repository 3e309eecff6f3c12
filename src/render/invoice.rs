//! An invoice as the files a customer receives: a PDF (seller and customer details, number, dates,
//! period, one line per provider, service and charge type, the adjustments, the total and how to pay) and
//! a CSV of the same lines. Both are rendered from the stored document, so a frozen invoice renders the
//! same every time.
//!
//! Amounts print at the currency's places (cents; whole yen): each line and adjustment rounded half away from
//! zero, the subtotal their sum, and a rounding line wherever those roundings do not cancel out, so what is
//! printed adds up to the total, which is rounded once from the exact amounts
//! ([`InvoiceDocument::printed`](crate::model::invoice::InvoiceDocument::printed)). The CSV also keeps every
//! line's exact amount.

use super::pdf::{fit, Document, Font, PAGE_HEIGHT};
use crate::model::amount::Amount;
use crate::model::billing_profile::{AdjustmentType, Calculation};
use crate::model::invoice::{currency_places, invoice_number, InvoiceStatus, Party};
use crate::model::spreadsheet::text_cell;
use crate::store::Invoice;

/// An invoice's files.
pub struct Files {
    /// `INV-000042`: the files' name without extension.
    pub stem: String,
    pub pdf: Vec<u8>,
    pub csv: Vec<u8>,
}

impl Files {
    pub fn of(invoice: &Invoice) -> anyhow::Result<Files> {
        Ok(Files { stem: invoice_number(invoice.number), pdf: pdf(invoice), csv: csv(invoice)? })
    }
}

/// An amount rounded to `places` as printed: thousands grouped, exactly `places` decimals (`1,234.50`).
pub fn money_at(amount: Amount, places: u32) -> String {
    let text = money(amount.rounded(places));
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    match places {
        0 => whole.to_string(),
        p => format!("{whole}.{:0<width$.width$}", fraction, width = p as usize),
    }
}

/// An invoice total as the API and the CSV show it: `1234.50` (`1235` in yen).
pub fn plain_total(total: Amount, currency: &str) -> String {
    money_at(total, currency_places(currency)).replace(',', "")
}

/// `1234.5` as `1,234.50`: thousands grouped, every decimal kept, at least two.
pub fn money(amount: Amount) -> String {
    let text = amount.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let fraction = format!("{fraction:0<2}");
    format!("{sign}{grouped}.{fraction}")
}

fn adjustment_label(name: &str, kind: AdjustmentType, calculation: Calculation, rate: rust_decimal::Decimal) -> String {
    let how = match calculation {
        Calculation::Percentage => format!("{}% of subtotal", rate.normalize()),
        Calculation::Fixed => "fixed".to_string(),
    };
    format!("{name} ({}, {how})", kind.as_str())
}

fn status_label(status: InvoiceStatus) -> &'static str {
    match status {
        InvoiceStatus::Draft => "DRAFT",
        InvoiceStatus::Sent => "Sent",
        InvoiceStatus::Approved => "Approved",
    }
}

/// The CSV: one row per cost line, then the subtotal, each adjustment, the rounding (when not zero) and the
/// total; `amount` as printed, `exact_amount` as computed.
pub fn csv(invoice: &Invoice) -> anyhow::Result<Vec<u8>> {
    let d = &invoice.document;
    let printed = d.printed();
    let at = |a: Amount| money_at(a, printed.places).replace(',', "");
    let number = invoice_number(invoice.number);
    let mut w = csv::Writer::from_writer(Vec::new());
    // Grouped by a tag, the first column is its value, headed `tag:<key>`.
    let first =
        d.tag_key.as_ref().map_or_else(|| "provider".to_string(), |k| text_cell(&format!("tag:{k}")).into_owned());
    w.write_record([
        "invoice_number",
        "line_type",
        &first,
        "service",
        "charge_type",
        "description",
        "amount",
        "currency",
        "exact_amount",
    ])?;
    // Everything but the amounts and the number is text from uploads or the MSP's profile: made safe for a
    // spreadsheet.
    let currency = text_cell(&d.currency);
    for (l, shown) in d.lines.iter().zip(&printed.lines) {
        let (provider, service, charge_type) =
            (text_cell(&l.provider), text_cell(&l.service), text_cell(&l.charge_type));
        let row =
            [&number, "cost", &*provider, &*service, &*charge_type, "", &at(*shown), &*currency, &l.amount.to_string()];
        w.write_record(row)?;
    }
    w.write_record([
        &number,
        "subtotal",
        "",
        "",
        "",
        "Subtotal",
        &at(printed.subtotal),
        &*currency,
        &d.subtotal.to_string(),
    ])?;
    for (a, shown) in d.adjustments.iter().zip(&printed.adjustments) {
        let label = adjustment_label(&a.name, a.adjustment_type, a.calculation_type, a.rate);
        let row =
            [&number, "adjustment", "", "", "", &*text_cell(&label), &at(*shown), &*currency, &a.amount.to_string()];
        w.write_record(row)?;
    }
    if printed.rounding != Amount::ZERO {
        let rounding = at(printed.rounding);
        w.write_record([&number, "rounding", "", "", "", &rounding_label(printed.places), &rounding, &*currency, ""])?;
    }
    let total = plain_total(d.total, &d.currency);
    let label = format!("Total (rounded once to {} decimals, half away from zero)", printed.places);
    w.write_record([&number, "total", "", "", "", &label, &total, &*currency, &d.total.to_string()])?;
    // The rates the costs were converted by: the description says which, `exact_amount` holds the rate.
    if let Some(conversion) = &d.conversion {
        for (line, rate) in conversion.lines(&d.currency).iter().skip(1).zip(&conversion.rates) {
            let how = format!("{} ({})", line, conversion.lines(&d.currency)[0].trim_end_matches(':'));
            w.write_record([
                &number,
                "exchange_rate",
                "",
                "",
                "",
                &*text_cell(&how),
                "",
                &*currency,
                &rate.rate.normalize().to_string(),
            ])?;
        }
    }
    Ok(w.into_inner()?)
}

/// What the rounding line says.
fn rounding_label(places: u32) -> String {
    format!("Rounding (lines print at {places} decimals; the total is rounded once)")
}

const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
/// Lowest baseline for a line item before a new page starts.
const BOTTOM: f32 = 90.0;

/// Lines of a party's block: name, address, emails, custom fields.
fn party_lines(p: &Party) -> Vec<(Font, String)> {
    let mut lines = vec![(Font::Bold, p.name.clone())];
    lines.extend(p.billing.address_lines().into_iter().map(|l| (Font::Regular, l)));
    if let Some(emails) = &p.billing.billing_email {
        lines.push((Font::Regular, emails.join(", ")));
    }
    for f in &p.custom_fields {
        lines.push((Font::Regular, format!("{}: {}", f.name, f.value.as_deref().unwrap_or(""))));
    }
    lines
}

/// The PDF.
pub fn pdf(invoice: &Invoice) -> Vec<u8> {
    let d = &invoice.document;
    let printed = d.printed();
    let at = |a: Amount| money_at(a, printed.places);
    let number = invoice_number(invoice.number);
    let mut doc = Document::new(&format!("Invoice {number}"));
    let mut y = PAGE_HEIGHT - 60.0;

    // Seller, top left; the invoice's identity, top right.
    let mut left_y = y;
    for (font, line) in party_lines(&d.seller) {
        let size = if font == Font::Bold { 14.0 } else { 9.0 };
        doc.text(LEFT, left_y, font, size, 0.0, &fit(&line, font, size, 280.0));
        left_y -= if font == Font::Bold { 16.0 } else { 12.0 };
    }
    doc.text_right(RIGHT, y, Font::Bold, 22.0, 0.0, "INVOICE");
    let mut right_y = y - 22.0;
    let facts = [
        ("Invoice number", number.clone()),
        ("Status", status_label(invoice.status).to_string()),
        ("Invoice date", d.issued_on.to_string()),
        ("Due date", d.due_on.to_string()),
        ("Billing period", format!("{} to {}", invoice.period.start, invoice.period.end)),
        ("Currency", d.currency.clone()),
    ];
    for (label, value) in facts {
        doc.text_right(RIGHT - 120.0, right_y, Font::Regular, 9.0, 0.35, label);
        doc.text_right(RIGHT, right_y, Font::Bold, 9.0, 0.0, &value);
        right_y -= 13.0;
    }
    y = left_y.min(right_y) - 18.0;

    // Bill to.
    doc.text(LEFT, y, Font::Bold, 9.0, 0.35, "BILL TO");
    y -= 14.0;
    for (font, line) in party_lines(&d.buyer) {
        let size = if font == Font::Bold { 11.0 } else { 9.0 };
        doc.text(LEFT, y, font, size, 0.0, &fit(&line, font, size, 400.0));
        y -= 12.0;
    }
    doc.text(LEFT, y, Font::Regular, 8.0, 0.35, &format!("Account {}", invoice.account_token));
    y -= 26.0;

    // Line items.
    // Grouped by a tag, the first column is its value.
    let first = d.tag_key.as_deref().unwrap_or("Provider");
    let columns = [(LEFT + 4.0, first, 90.0), (LEFT + 100.0, "Service", 200.0), (LEFT + 310.0, "Charge type", 80.0)];
    let header = |doc: &mut Document, y: f32| {
        doc.fill(LEFT, y - 5.0, RIGHT - LEFT, 17.0, 0.92);
        for (x, title, _) in columns {
            doc.text(x, y, Font::Bold, 9.0, 0.0, title);
        }
        doc.text_right(RIGHT - 4.0, y, Font::Bold, 9.0, 0.0, &format!("Amount ({})", d.currency));
    };
    header(&mut doc, y);
    y -= 18.0;
    if d.lines.is_empty() {
        doc.text(LEFT + 4.0, y, Font::Regular, 9.0, 0.35, "No costs in this period.");
        y -= 14.0;
    }
    for (line, shown) in d.lines.iter().zip(&printed.lines) {
        if y < BOTTOM {
            doc.new_page();
            y = PAGE_HEIGHT - 60.0;
            doc.text(LEFT, y, Font::Bold, 11.0, 0.0, &format!("Invoice {number} (continued)"));
            y -= 24.0;
            header(&mut doc, y);
            y -= 18.0;
        }
        let values = [&line.provider, &line.service, &line.charge_type];
        for ((x, _, width), value) in columns.iter().zip(values) {
            let shown = if value.is_empty() { "(none)" } else { value.as_str() };
            doc.text(*x, y, Font::Regular, 9.0, 0.0, &fit(shown, Font::Regular, 9.0, *width));
        }
        doc.text_right(RIGHT - 4.0, y, Font::Regular, 9.0, 0.0, &at(*shown));
        y -= 13.0;
    }

    // Totals; kept together on one page with the payment details.
    let rates = d.conversion.as_ref().map_or(0, |c| c.rates.len() + 2);
    let needed = 53.0 + 13.0 * d.adjustments.len() as f32 + 110.0 + 12.0 * rates as f32;
    if y - needed < 40.0 {
        doc.new_page();
        y = PAGE_HEIGHT - 60.0;
        doc.text(LEFT, y, Font::Bold, 11.0, 0.0, &format!("Invoice {number} (continued)"));
        y -= 24.0;
    }
    doc.rule(LEFT, RIGHT, y + 6.0, 0.6, 0.6);
    y -= 8.0;
    doc.text_right(RIGHT - 130.0, y, Font::Regular, 9.0, 0.0, "Subtotal");
    doc.text_right(RIGHT - 4.0, y, Font::Regular, 9.0, 0.0, &at(printed.subtotal));
    y -= 13.0;
    for (a, shown) in d.adjustments.iter().zip(&printed.adjustments) {
        let label = adjustment_label(&a.name, a.adjustment_type, a.calculation_type, a.rate);
        doc.text_right(RIGHT - 130.0, y, Font::Regular, 9.0, 0.0, &fit(&label, Font::Regular, 9.0, 300.0));
        doc.text_right(RIGHT - 4.0, y, Font::Regular, 9.0, 0.0, &at(*shown));
        y -= 13.0;
    }
    if printed.rounding != Amount::ZERO {
        let label = rounding_label(printed.places);
        doc.text_right(RIGHT - 130.0, y, Font::Regular, 9.0, 0.0, &fit(&label, Font::Regular, 9.0, 300.0));
        doc.text_right(RIGHT - 4.0, y, Font::Regular, 9.0, 0.0, &at(printed.rounding));
        y -= 13.0;
    }
    y -= 4.0;
    doc.fill(RIGHT - 250.0, y - 7.0, 250.0, 22.0, 0.92);
    doc.text_right(RIGHT - 130.0, y, Font::Bold, 12.0, 0.0, "Total due");
    doc.text_right(RIGHT - 4.0, y, Font::Bold, 12.0, 0.0, &format!("{} {}", d.currency, at(d.total)));
    y -= 34.0;

    // The rates the costs were converted by, when they were.
    if let Some(conversion) = &d.conversion {
        doc.text(LEFT, y, Font::Bold, 9.0, 0.35, "EXCHANGE RATES");
        y -= 13.0;
        for line in conversion.lines(&d.currency) {
            doc.text(LEFT, y, Font::Regular, 9.0, 0.0, &fit(&line, Font::Regular, 9.0, RIGHT - LEFT));
            y -= 12.0;
        }
        y -= 10.0;
    }

    // How to pay.
    doc.text(LEFT, y, Font::Bold, 9.0, 0.35, "PAYMENT");
    y -= 13.0;
    let mut pay = vec![format!("Payment due within {} days, by {}.", d.payment_terms_days, d.due_on)];
    if let Some(b) = &d.banking {
        let fields = [
            ("Bank", &b.bank_name),
            ("Beneficiary", &b.beneficiary_name),
            ("IBAN", &b.iban),
            ("SWIFT/BIC", &b.swift_bic),
            ("Account number", &b.account_number),
            ("Routing number", &b.routing_number),
            ("Tax ID", &b.tax_id),
        ];
        pay.extend(fields.iter().filter_map(|(label, v)| v.as_ref().map(|v| format!("{label}: {v}"))));
    }
    pay.push(format!("Please quote {number} with your payment."));
    for line in pay {
        doc.text(LEFT, y, Font::Regular, 9.0, 0.0, &line);
        y -= 12.0;
    }

    // Footer on every page.
    doc.footer(|page, of| {
        format!("{number} - page {page} of {of} - amounts are exact; the total is rounded once to 2 decimals, half away from zero")
    });
    doc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::invoice::{BillingPeriod, InvoiceDocument, InvoiceInput};

    fn invoice(lines: usize) -> Invoice {
        let date = |d: u32| chrono::NaiveDate::from_ymd_opt(2024, 9, d).unwrap();
        let costs = (0..lines)
            .map(|i| {
                (
                    "aws".to_string(),
                    format!("Service {i:03}"),
                    "Usage".to_string(),
                    Amount::parse("a", "1.005").unwrap(),
                )
            })
            .collect();
        let document = InvoiceDocument::compute(InvoiceInput {
            seller: Party { name: "MSP".into(), ..Party::default() },
            buyer: Party { name: "Größe & Co".into(), ..Party::default() },
            banking: None,
            issued_on: date(30),
            payment_terms_days: 10,
            currency: "EUR".into(),
            costs,
            adjustments: vec![],
            conversion: None,
            tag_key: None,
        })
        .unwrap();
        Invoice {
            token: "invc_1".into(),
            number: 7,
            msp_account_token: "acct_1".into(),
            account_token: "acct_2".into(),
            account_name: "Größe".into(),
            period: BillingPeriod { start: date(1), end: date(30) },
            status: InvoiceStatus::Draft,
            document,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn many_lines_continue_over_pages_and_the_csv_keeps_every_line() {
        let one = String::from_utf8_lossy(&pdf(&invoice(3))).to_string();
        assert!(one.contains("/Count 1"), "a short invoice is one page");
        let long = String::from_utf8_lossy(&pdf(&invoice(150))).to_string();
        assert!(long.contains("/Count 4"), "150 lines take four pages");
        let csv = String::from_utf8(csv(&invoice(150)).unwrap()).unwrap();
        assert_eq!(csv.lines().filter(|l| l.contains(",cost,")).count(), 150);
        // 150 × 1.005 = 150.75, rounded once (not 150 × 1.01 = 151.50).
        assert!(
            csv.trim_end().ends_with(
                "INV-000007,total,,,,\"Total (rounded once to 2 decimals, half away from zero)\",150.75,EUR,150.75"
            ),
            "{csv}"
        );
    }

    #[test]
    fn money_groups_thousands_and_keeps_every_decimal() {
        let a = |s: &str| Amount::parse("a", s).unwrap();
        assert_eq!(money(a("1234567.5")), "1,234,567.50");
        assert_eq!(money(a("-20.52022672899")), "-20.52022672899");
        assert_eq!(money(a("0")), "0.00");
        assert_eq!(money(a("999")), "999.00");
        assert_eq!(money_at(a("1234567.005"), 2), "1,234,567.01");
        assert_eq!(money_at(a("-0.004"), 2), "0.00");
        assert_eq!(money_at(a("1234.5"), 0), "1,235");
        assert_eq!(plain_total(a("1234.5"), "USD"), "1234.50");
    }
}
