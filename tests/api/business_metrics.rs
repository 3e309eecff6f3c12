//! Business metrics and unit costs over real HTTP (`/v2/business_metrics`, `/v2/unit_costs`): a metric
//! attached to a cost report, values from CSV (either client's form) and the API, bad files refused naming
//! their lines with nothing stored, and unit costs exact to the digit, per day and per month, with the
//! report's filter and a label filter applied; the same unit costs as a data export's CSV file.

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{on_both_stores, Resp, TestApp};

on_both_stores!(
    a_metric_is_created_listed_updated_and_deleted_and_refuses_what_it_cannot_do,
    values_come_from_csv_whole_or_not_at_all_and_are_listed_summed_and_deleted,
    a_reports_unit_costs_divide_its_cost_by_the_metric_exactly,
);

impl TestApp {
    /// `PUT …/values.csv` with `csv` as a multipart file (the TypeScript client's form).
    async fn put_values_csv(&self, metric: &str, csv: &str, forecasted: bool) -> Resp {
        let mut form = Form::new().part("csv", Part::bytes(csv.as_bytes().to_vec()).file_name("values.csv"));
        if forecasted {
            form = form.text("forecasted", "true");
        }
        self.send_form(Method::PUT, &format!("/v2/business_metrics/{metric}/values.csv"), &self.token, form).await
    }

    async fn cost_report(&self, body: Value) -> String {
        let res = self.post("/v2/cost_reports", body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body["token"].as_str().unwrap().to_string()
    }
}

fn token(v: &Value) -> String {
    v["token"].as_str().unwrap().to_string()
}

async fn a_metric_is_created_listed_updated_and_deleted_and_refuses_what_it_cannot_do(app: TestApp) {
    let report = app.cost_report(json!({"title": "All"})).await;
    let res = app
        .post(
            "/v2/business_metrics",
            json!({"title": "Requests", "cost_report_tokens_with_metadata": [
                {"cost_report_token": report, "unit_scale": "per_thousand", "label_filter": ["web", ""]}],
                "values": [{"date": "2024-07-01T00:00:00Z", "amount": "1000"}, {"date": "2024-07-02", "amount": 2.5, "label": "web"}]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let m = token(&res.body);
    assert!(m.starts_with("bsnss_mtrc_"), "{m}");
    assert_eq!(res.body["import_type"], "csv");
    assert_eq!(res.body["integration_token"], "");
    assert_eq!(
        res.body["cost_report_tokens_with_metadata"],
        json!([{"cost_report_token": report, "unit_scale": "per_thousand", "calculation_type": "unit_cost", "label_filter": ["web", ""]}])
    );
    let res = app.get(&format!("/v2/business_metrics/{m}/values")).await;
    assert_eq!(
        res.body["values"],
        json!([{"date": "2024-07-02T00:00:00Z", "amount": "2.5", "label": "web"}, {"date": "2024-07-01T00:00:00Z", "amount": "1000.0", "label": null}]),
        "newest first, exact text"
    );

    // Listed and searched by title; shown; updated field by field.
    app.post("/v2/business_metrics", json!({"title": "Revenue"})).await;
    let res = app.get("/v2/business_metrics?q=REQ").await;
    assert_eq!(res.body["business_metrics"].as_array().unwrap().len(), 1, "{}", res.text);
    assert!(app.get("/v2/business_metrics?limit=1").await.body["links"]["next"].is_string());
    let res = app.put(&format!("/v2/business_metrics/{m}"), json!({"title": "API requests"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["title"], "API requests");
    assert_eq!(res.body["cost_report_tokens_with_metadata"][0]["unit_scale"], "per_thousand", "kept when not sent");

    // What costd cannot do is a 400 naming the field; nothing of a refused write is kept.
    let res =
        app.post("/v2/business_metrics", json!({"title": "CW", "cloudwatch_fields": {"namespace": "AWS/ELB"}})).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("cloudwatch_fields: costd imports business metrics from CSV"), "{}", res.text);
    let res = app
        .put(
            &format!("/v2/business_metrics/{m}"),
            json!({"title": "Renamed", "cost_report_tokens_with_metadata": [{"cost_report_token": "rprt_0000000000000000"}]}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("rprt_0000000000000000 is not a cost report of this account"), "{}", res.text);
    let res = app.get(&format!("/v2/business_metrics/{m}")).await;
    assert_eq!(res.body["title"], "API requests", "a refused update changes nothing");
    assert_eq!(res.body["cost_report_tokens_with_metadata"].as_array().unwrap().len(), 1);
    let res = app
        .put(&format!("/v2/business_metrics/{m}"), json!({"cost_report_tokens_with_metadata": [{"cost_report_token": report, "calculation_type": "usage_unit_cost"}]}))
        .await;
    assert_eq!(res.status, 400, "{}", res.text);

    // Another account neither sees the metric nor attaches its own metric to this account's report.
    let (_, other) = app.other_account().await;
    let res = app.send(Method::GET, &format!("/v2/business_metrics/{m}"), Some(&other), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
    let body = json!({"title": "Theirs", "cost_report_tokens_with_metadata": [{"cost_report_token": report}]});
    let res = app.send(Method::POST, "/v2/business_metrics", Some(&other), Some(body.to_string())).await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res = app.send(Method::GET, "/v2/business_metrics", Some(&other), None).await;
    assert_eq!(res.body["business_metrics"], json!([]), "nothing half-created: {}", res.text);
    // A read-only token reads, never writes.
    let reader = app.mint_for(app.account.token.as_ref(), "read").await;
    let res = app.send(Method::PUT, &format!("/v2/business_metrics/{m}"), Some(&reader), Some("{}".into())).await;
    assert_eq!(res.status, 403, "{}", res.text);

    // Attached from the report's side too: created with it, shown on it, replaced by an update.
    let body = json!({"title": "By report", "business_metric_tokens_with_metadata": [
        {"business_metric_token": m, "unit_scale": "per_million", "label_filter": ["web"]}]});
    let res = app.post("/v2/cost_reports", body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let second = token(&res.body);
    assert_eq!(
        res.body["business_metric_tokens_with_metadata"],
        json!([{"business_metric_token": m, "unit_scale": "per_million", "calculation_type": "unit_cost", "label_filter": ["web"]}])
    );
    let attached = app.get(&format!("/v2/business_metrics/{m}")).await.body["cost_report_tokens_with_metadata"].clone();
    assert_eq!(attached.as_array().unwrap().len(), 2, "{attached}");
    assert_eq!(attached[1]["cost_report_token"], json!(second));
    let res = app.put(&format!("/v2/cost_reports/{second}"), json!({"business_metric_tokens_with_metadata": []})).await;
    assert_eq!(res.body["business_metric_tokens_with_metadata"], json!([]), "{}", res.text);
    let bad = json!({"title": "Bad", "business_metric_tokens_with_metadata": [{"business_metric_token": "bsnss_mtrc_0000000000000000"}]});
    let res = app.post("/v2/cost_reports", bad).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.error_text().contains("business_metric_tokens_with_metadata[0].business_metric_token"), "{}", res.text);
    let titles: Vec<String> = app.get("/v2/cost_reports").await.body["cost_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_string())
        .collect();
    assert!(!titles.contains(&"Bad".to_string()), "nothing half-created: {titles:?}");

    // Deleting the report detaches it; deleting the metric deletes its values.
    assert_eq!(app.delete(&format!("/v2/cost_reports/{report}")).await.status, 204);
    let res = app.get(&format!("/v2/business_metrics/{m}")).await;
    assert_eq!(res.body["cost_report_tokens_with_metadata"], json!([]), "{}", res.text);
    assert_eq!(app.delete(&format!("/v2/business_metrics/{m}")).await.status, 204);
    assert_eq!(app.get(&format!("/v2/business_metrics/{m}/values")).await.status, 404);
    assert_eq!(app.delete(&format!("/v2/business_metrics/{m}")).await.status, 404);
}

async fn values_come_from_csv_whole_or_not_at_all_and_are_listed_summed_and_deleted(app: TestApp) {
    let m = token(&app.post("/v2/business_metrics", json!({"title": "Users"})).await.body);
    let res = app
        .put_values_csv(
            &m,
            "date,amount,label\n2024-07-01,10,web\n2024-07-01,4,api\n2024-07-02,0.125,web\n2024-08-01,7,\n",
            false,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(token(&res.body), m);

    // One bad row refuses the file (422, every bad line named) and nothing of it is stored.
    let res =
        app.put_values_csv(&m, "2024-07-03,1,web\n2024-07-04,lots,web\n2024-07-05T13:00:00Z,1,web\n", false).await;
    assert_eq!(res.status, 422, "{}", res.text);
    let text = res.error_text();
    assert!(text.contains("line 2: amount must be a decimal number like 1250.5, got \"lots\""), "{text}");
    assert!(text.contains("line 3: date must be a day like 2024-03-01 (values are daily)"), "{text}");
    let res = app.get(&format!("/v2/business_metrics/{m}/values")).await;
    assert_eq!(res.body["values"].as_array().unwrap().len(), 4, "{}", res.text);

    // The Python client's form: form-urlencoded, `forecasted` beside the file; a day sent again replaces it.
    let path = format!("/v2/business_metrics/{m}/values.csv");
    let twice = [("forecasted", "true"), ("csv", "2024-09-01,100,web\n2024-09-01,150,web\n")];
    let res = app.send_urlencoded(Method::PUT, &path, &app.token, &twice).await;
    assert_eq!(res.status, 422, "one file may not give a day and label twice: {}", res.text);
    let once = [("csv", "2024-09-01,100,web\n"), ("forecasted", "true")];
    assert_eq!(app.send_urlencoded(Method::PUT, &path, &app.token, &once).await.status, 200);
    let res = app.get(&format!("/v2/business_metrics/{m}/forecasted_values")).await;
    assert_eq!(
        res.body["values"],
        json!([{"date": "2024-09-01T00:00:00Z", "amount": "100.0", "label": "web"}]),
        "{}",
        res.text
    );
    assert_eq!(app.put_values_csv(&m, "2024-07-01,11,web\n", false).await.status, 200);

    // Listed by label, summed by month (labels apart), paged.
    let res = app.get(&format!("/v2/business_metrics/{m}/values?label_values[]=web&date_bin=month")).await;
    assert_eq!(
        res.body["values"],
        json!([{"date": "2024-07-01T00:00:00Z", "amount": "11.125", "label": "web"}]),
        "{}",
        res.text
    );
    let res = app.get(&format!("/v2/business_metrics/{m}/values?start_date=2024-07-02&limit=1")).await;
    assert_eq!(
        res.body["values"],
        json!([{"date": "2024-08-01T00:00:00Z", "amount": "7.0", "label": null}]),
        "{}",
        res.text
    );
    assert!(res.body["links"]["next"].is_string(), "{}", res.text);
    let res = app.get(&format!("/v2/business_metrics/{m}/labels")).await;
    assert_eq!(res.body["labels"], json!([{"value": "api"}, {"value": "web"}]), "{}", res.text);
    assert_eq!(app.get(&format!("/v2/business_metrics/{m}/values?date_bin=year")).await.status, 400);

    // Deleted by range and label (an empty label: the unlabelled values), and the forecast apart.
    let res = app
        .delete(&format!("/v2/business_metrics/{m}/values?start_date=2024-07-01&end_date=2024-07-31&label=web"))
        .await;
    assert_eq!((res.status, &res.body), (200, &json!({"deleted_count": 2})), "{}", res.text);
    let res = app.delete(&format!("/v2/business_metrics/{m}/values?label=")).await;
    assert_eq!(res.body, json!({"deleted_count": 1}), "{}", res.text);
    let res = app.delete(&format!("/v2/business_metrics/{m}/values?forecasted=true")).await;
    assert_eq!(res.body, json!({"deleted_count": 1}), "{}", res.text);
    let res = app.get(&format!("/v2/business_metrics/{m}/values")).await;
    assert_eq!(
        res.body["values"],
        json!([{"date": "2024-07-01T00:00:00Z", "amount": "4.0", "label": "api"}]),
        "{}",
        res.text
    );

    // A file for a metric that is not there is a 404, however good the file.
    assert_eq!(app.put_values_csv("bsnss_mtrc_0000000000000000", "2024-07-01,1\n", false).await.status, 404);
}

async fn a_reports_unit_costs_divide_its_cost_by_the_metric_exactly(app: TestApp) {
    let csv = "ChargeCategory,ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n\
        Usage,2024-07-01,10.00,USD,Compute\n\
        Usage,2024-07-01,90.00,USD,Storage\n\
        Usage,2024-07-02,20.00,USD,Compute\n\
        Usage,2024-08-05,7.00,USD,Compute\n";
    let integration = app.create_integration("Custom").await["token"].as_str().unwrap().to_string();
    assert_eq!(app.upload(&integration, "c.csv", csv.as_bytes().to_vec()).await.status, 201);
    let report = app
        .cost_report(json!({"title": "Compute", "filter": "costs.service = 'Compute'", "start_date": "2024-07-01", "end_date": "2024-08-31"}))
        .await;
    let none = app.get(&format!("/v2/unit_costs?cost_report_token={report}")).await;
    assert_eq!((none.status, &none.body["unit_costs"]), (200, &json!([])), "no metric attached: {}", none.text);

    let attach = |scale: &str, calculation: &str, labels: Value| json!([{"cost_report_token": report, "unit_scale": scale, "calculation_type": calculation, "label_filter": labels}]);
    let requests = token(
        &app.post("/v2/business_metrics", json!({"title": "Requests", "cost_report_tokens_with_metadata": attach("per_thousand", "unit_cost", json!(["web"]))}))
            .await
            .body,
    );
    // 3000 web requests on July 1st (and 999 api ones, filtered out), 0 on the 2nd, 7000 in August; none on
    // July 3rd, which has no cost either.
    let values =
        "2024-07-01,3000,web\n2024-07-01,999,api\n2024-07-02,0,web\n2024-08-05,6000,web\n2024-08-06,1000,web\n";
    assert_eq!(app.put_values_csv(&requests, values, false).await.status, 200);
    let revenue = token(
        &app.post("/v2/business_metrics", json!({"title": "Revenue", "cost_report_tokens_with_metadata": attach("per_unit", "gross_margin", Value::Null),
            "values": [{"date": "2024-07-01", "amount": "40"}, {"date": "2024-08-31", "amount": "21"}]}))
            .await
            .body,
    );

    let res = app.get(&format!("/v2/unit_costs?cost_report_token={report}&date_bin=day&order=asc")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let got: Vec<(String, String, String, String, Value)> = res.body["unit_costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["date"].as_str().unwrap().to_string(),
                u["business_metric_title"].as_str().unwrap().to_string(),
                u["unit_cost_amount"].as_str().unwrap().to_string(),
                u["business_metric_amount"].as_str().unwrap().to_string(),
                u["scale"].clone(),
            )
        })
        .collect();
    let row = |d: &str, t: &str, u: &str, m: &str, s: u64| {
        (d.to_string(), t.to_string(), u.to_string(), m.to_string(), json!(s))
    };
    assert_eq!(
        got,
        vec![
            // The report's cost is Compute only: 10 ÷ (3000 ÷ 1000) = 3.333…, rounded once at 18 places.
            row("2024-07-01", "Requests", "3.333333333333333333", "3000.0", 1000),
            // (40 − 10) ÷ 40 × 100.
            row("2024-07-01", "Revenue", "75.0", "40.0", 1),
            // July 2nd: 0 requests, no unit cost (nothing to divide by), never a division error.
            row("2024-08-05", "Requests", "1.166666666666666667", "6000.0", 1000),
            // No cost on August 6th: a unit cost of 0.
            row("2024-08-06", "Requests", "0.0", "1000.0", 1000),
            // (21 − 0) ÷ 21 × 100.
            row("2024-08-31", "Revenue", "100.0", "21.0", 1),
        ],
        "{}",
        res.text
    );
    assert_eq!(res.body["unit_costs"][0]["business_metric_token"], requests);
    assert_eq!(res.body["unit_costs"][0]["calculation_type"], "unit_cost");
    assert_eq!(res.body["unit_costs"][1]["business_metric_token"], revenue);
    assert_eq!(res.body["unit_costs"][0]["currency"], "USD");

    // By month (the report's window), newest first: 30 ÷ 3 and 7 ÷ 7.
    let res = app.get(&format!("/v2/unit_costs?cost_report_token={report}&date_bin=month&limit=1")).await;
    assert_eq!(res.body["unit_costs"][0]["date"], "2024-08-01", "{}", res.text);
    assert_eq!(res.body["unit_costs"][0]["business_metric_title"], "Requests");
    assert_eq!(res.body["unit_costs"][0]["unit_cost_amount"], "1.0");
    assert!(res.body["links"]["next"].is_string(), "{}", res.text);
    let res = app
        .get(&format!(
            "/v2/unit_costs?cost_report_token={report}&date_bin=month&start_date=2024-07-01&end_date=2024-07-31"
        ))
        .await;
    let july: Vec<&str> =
        res.body["unit_costs"].as_array().unwrap().iter().map(|u| u["unit_cost_amount"].as_str().unwrap()).collect();
    assert_eq!(july, vec!["10.0", "25.0"], "{}", res.text);

    // The same unit costs as a file (`POST /v2/unit_costs/data_exports`, a read token may ask), oldest
    // first, to the digit of the list.
    let reader = app.mint(&app.account, "read").await;
    let body = json!({"cost_report_token": report, "date_bin": "day"}).to_string();
    let res = app.send(Method::POST, "/v2/unit_costs/data_exports", Some(&reader), Some(body)).await;
    assert_eq!(res.status, 202, "{}", res.text);
    assert_eq!(res.body["export_type"], "unit_costs", "{}", res.text);
    let export = res.body["token"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..200 {
        let res = app.send(Method::GET, &format!("/v2/data_exports/{export}"), Some(&reader), None).await;
        if res.status == 200 {
            done = res.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(done["status"], "completed", "{done}");
    let url = done["manifest"]["files"][0].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/v2/data_exports/{export}/files/unit_costs.csv")), "{url}");
    let file = app.client.get(&url).bearer_auth(&reader).send().await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(
        lines[0],
        "date,business_metric_token,business_metric_title,calculation_type,unit_cost_amount,business_metric_amount,scale,currency"
    );
    assert_eq!(lines[1], format!("2024-07-01,{requests},Requests,unit_cost,3.333333333333333333,3000.0,1000,USD"));
    assert_eq!(lines[2], format!("2024-07-01,{revenue},Revenue,gross_margin,75.0,40.0,1,USD"));
    assert_eq!(lines.len(), 6, "{file}");
    let costs_csv = url.replace("unit_costs.csv", "costs.csv");
    assert_eq!(app.client.get(&costs_csv).bearer_auth(&reader).send().await.unwrap().status().as_u16(), 404);
    // Refused at once: no report named, or another account's.
    let res = app.send(Method::POST, "/v2/unit_costs/data_exports", Some(&reader), Some("{}".into())).await;
    assert_eq!(res.status, 400, "{}", res.text);
    let (_, other) = app.other_account().await;
    let body = json!({"cost_report_token": report}).to_string();
    let res = app.send(Method::POST, "/v2/unit_costs/data_exports", Some(&other), Some(body)).await;
    assert_eq!(res.status, 404, "{}", res.text);

    // Bad parameters are named; another account's report is not found.
    let res = app.get(&format!("/v2/unit_costs?cost_report_token={report}&date_bin=hour")).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(app.get("/v2/unit_costs").await.status, 400);
    let (_, other) = app.other_account().await;
    let res = app.send(Method::GET, &format!("/v2/unit_costs?cost_report_token={report}"), Some(&other), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
}
