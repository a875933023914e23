//! The segment editor: create or change a segment or list. One form posts back to its own
//! address with `intent=preview` (count and sample without saving, the form shown again) or
//! `intent=save`; the script sends the preview to `POST /segments/preview` instead and swaps
//! the answer (errors and preview) into the page.

use super::definition::{self, is_definition_error};
use super::parse_id;
use crate::i18n::Locale;
use crate::pages::{field_messages, form_errors, see_other};
use crate::render;
use crate::session::{blocking, core, Console, FormData, WebError};
use crate::WebState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ciclo_core::segments::{SegmentInput, SegmentPreview, SegmentView};
use ciclo_domain::ids::SegmentId;
use ciclo_domain::operator::Permission;
use ciclo_domain::FieldError;
use ciclo_store::SegmentKind;
use minijinja::{context, Value};
use std::collections::HashMap;

/// Members shown in a preview.
pub(crate) const SAMPLE: usize = 10;
/// Longest definition the editor sends to core (a definition is a few lines).
const MAX_DEFINITION: usize = 20_000;

/// What the form holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct EditorForm {
    pub name: String,
    pub description: String,
    pub definition: String,
    /// `dynamic` or `static`.
    pub kind: &'static str,
}

impl EditorForm {
    fn from_form(form: &FormData, kind: SegmentKind) -> EditorForm {
        EditorForm {
            name: form.text("name"),
            description: form
                .get("description")
                .unwrap_or_default()
                .trim()
                .to_string(),
            // Browsers send a textarea's line breaks as CRLF; the editor counts lines with LF.
            definition: form
                .get("definition")
                .unwrap_or_default()
                .replace("\r\n", "\n")
                .trim_end()
                .to_string(),
            kind: kind.as_str(),
        }
    }

    fn of(view: &SegmentView) -> EditorForm {
        EditorForm {
            name: view.record.name.clone(),
            description: view.record.description.clone(),
            definition: view.text.clone().unwrap_or_default(),
            kind: view.record.kind.as_str(),
        }
    }

    fn is_dynamic(&self) -> bool {
        self.kind == "dynamic"
    }
}

/// What the editor shows besides the form: errors by field, the definition's errors, a
/// preview.
#[derive(Default)]
struct Outcome {
    errors: Vec<FieldError>,
    definition_errors: Vec<FieldError>,
    preview: Option<SegmentPreview>,
    /// Customers of the workspace with a lifecycle stage (every customer the evaluator has
    /// seen): what the preview's count is a share of. `None` before any stage is stored.
    known: Option<i64>,
}

impl Outcome {
    fn from_errors(errors: Vec<FieldError>) -> Outcome {
        let (definition_errors, errors) = errors.into_iter().partition(is_definition_error);
        Outcome {
            errors,
            definition_errors,
            preview: None,
            known: None,
        }
    }

    fn failed(&self) -> bool {
        !self.errors.is_empty() || !self.definition_errors.is_empty()
    }
}

/// The error messages of the fields other than the definition, in the operator's language.
fn messages(locale: Locale, errors: &[FieldError]) -> std::collections::BTreeMap<String, String> {
    let mut out = field_messages(locale, errors);
    for error in errors {
        let key = format!("segment_editor.field_errors.{}_{}", error.field, error.code);
        if locale.has(&key) {
            out.insert(error.field.clone(), locale.text(&key));
        }
    }
    out
}

/// The preview's values: the count, the share of all customers, the sample.
///
/// `SegmentPreview::customers` counts the candidates core looked at (an index may narrow
/// them), not the workspace's customers; the total is the customers with a stored stage.
fn preview_values(preview: &SegmentPreview, known: Option<i64>) -> Value {
    let sample: Vec<Value> = preview
        .sample
        .iter()
        .map(|c| {
            context! {
                id => c.id.as_str(),
                name => c.name.as_deref(),
                email => c.email.as_ref().map(|e| e.to_string()),
                phone => c.phone.as_ref().map(|p| p.to_string()),
                city => c.city.as_deref(),
                orders_count => c.stats.orders_count,
                total_spent_minor => c.stats.total_spent_minor,
                last_seen_at => c.last_seen_at.to_rfc3339(),
            }
        })
        .collect();
    // Customers new since the evaluator last ran may match without a stage yet.
    let total = known.filter(|t| *t > 0 && *t as usize >= preview.count);
    context! {
        count => preview.count,
        customers => total,
        share => total.map(|t| preview.count as f64 / t as f64),
        sample => sample,
        more => preview.count.saturating_sub(preview.sample.len()),
        elapsed_ms => preview.elapsed_ms.round() as i64,
    }
}

/// The values of the definition's errors and the preview (the fragment and the page share them).
fn result_values(locale: Locale, form: &EditorForm, outcome: &Outcome) -> Value {
    let errors: Vec<Value> = outcome
        .definition_errors
        .iter()
        .map(|e| definition::error_view(locale, &form.definition, e))
        .collect();
    context! {
        definition_errors => errors,
        preview => outcome.preview.as_ref().map(|p| preview_values(p, outcome.known)),
    }
}

fn render_editor(
    state: &WebState,
    console: &Console,
    editing: Option<&SegmentView>,
    form: &EditorForm,
    outcome: &Outcome,
    status: StatusCode,
) -> Result<Response, WebError> {
    let locale = console.locale;
    let examples: Vec<Value> = definition::examples(locale)
        .iter()
        .map(|(what, text)| context! { what => *what, text => *text })
        .collect();
    let attributes: Vec<Value> = definition::ATTRIBUTES
        .iter()
        .map(|(group, names)| context! { group => *group, names => *names })
        .collect();
    let action = match editing {
        Some(view) => format!("/segments/{}/edit", view.record.id),
        None => "/segments/new".to_string(),
    };
    let values = context! {
        editing => editing.map(super::summary),
        action => action,
        form => Value::from_serialize(form),
        is_list => !form.is_dynamic(),
        errors => messages(locale, &outcome.errors),
        result => result_values(locale, form, outcome),
        examples => examples,
        attributes => attributes,
        stages => ciclo_domain::lifecycle::Stage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    };
    render::page_with_status(
        &state.templates,
        console,
        "segment_edit.html",
        "segments",
        values,
        status,
    )
}

/// Runs the preview, or says why it cannot.
async fn preview(state: &WebState, console: &Console, form: &EditorForm) -> Outcome {
    if form.definition.trim().is_empty() {
        return Outcome::from_errors(vec![FieldError::new(
            "required",
            "definition",
            "a segment needs a definition",
        )]);
    }
    if form.definition.len() > MAX_DEFINITION {
        return Outcome::from_errors(vec![FieldError::new(
            "too_long",
            "definition",
            "the definition is too long",
        )]);
    }
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let text = serde_json::Value::String(form.definition.clone());
    let outcome = blocking(move || {
        let preview = ciclo.preview_segment(&actor, &text, SAMPLE)?;
        let known: i64 = ciclo.stage_counts(&actor)?.iter().map(|(_, n)| n).sum();
        Ok::<_, ciclo_core::CoreError>((preview, known))
    })
    .await;
    match outcome {
        Ok(Ok((preview, known))) => Outcome {
            preview: Some(preview),
            known: Some(known),
            ..Outcome::default()
        },
        Ok(Err(error)) => match form_errors(&error) {
            Some(errors) => Outcome::from_errors(errors),
            None => Outcome::from_errors(vec![FieldError::new(
                "preview_failed",
                "_form",
                error.to_string(),
            )]),
        },
        Err(_) => Outcome::from_errors(vec![FieldError::new(
            "preview_failed",
            "_form",
            "the preview failed",
        )]),
    }
}

fn kind_from_query(q: &HashMap<String, String>) -> SegmentKind {
    match q.get("kind").map(String::as_str) {
        Some("static") => SegmentKind::Static,
        _ => SegmentKind::Dynamic,
    }
}

/// `GET /segments/new` (`?kind=static` for a list).
pub(crate) async fn new_page(
    State(state): State<WebState>,
    console: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    console.require(Permission::WriteCustomers)?;
    let form = EditorForm {
        kind: kind_from_query(&q).as_str(),
        ..EditorForm::default()
    };
    render_editor(
        &state,
        &console,
        None,
        &form,
        &Outcome::default(),
        StatusCode::OK,
    )
}

fn kind_of_form(form: &FormData) -> SegmentKind {
    match form.get("kind") {
        Some("static") => SegmentKind::Static,
        _ => SegmentKind::Dynamic,
    }
}

fn input_of(form: &EditorForm, creating: bool) -> SegmentInput {
    SegmentInput {
        name: Some(form.name.clone()),
        description: Some(form.description.clone()),
        kind: creating.then(|| form.kind.to_string()),
        definition: form
            .is_dynamic()
            .then(|| serde_json::Value::String(form.definition.clone())),
    }
}

/// Saves, or answers why not.
async fn save(
    state: &WebState,
    console: &Console,
    editing: Option<SegmentId>,
    form: &EditorForm,
) -> Result<Result<SegmentView, Outcome>, WebError> {
    if form.is_dynamic() && form.definition.len() > MAX_DEFINITION {
        return Ok(Err(Outcome::from_errors(vec![FieldError::new(
            "too_long",
            "definition",
            "the definition is too long",
        )])));
    }
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    let input = input_of(form, editing.is_none());
    let outcome = blocking(move || match &editing {
        Some(id) => ciclo.update_segment(&actor, id, &input),
        None => ciclo.create_segment(&actor, &input),
    })
    .await?;
    match outcome {
        Ok(view) => Ok(Ok(view)),
        Err(error) => match form_errors(&error) {
            Some(errors) => Ok(Err(Outcome::from_errors(errors))),
            None => Err(error.into()),
        },
    }
}

/// `POST /segments/new`: preview or create.
pub(crate) async fn create(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let raw = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let form = EditorForm::from_form(&raw, kind_of_form(&raw));
    if raw.get("intent") == Some("preview") && form.is_dynamic() {
        let outcome = preview(&state, &console, &form).await;
        let status = if outcome.failed() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        return render_editor(&state, &console, None, &form, &outcome, status);
    }
    match save(&state, &console, None, &form).await? {
        Ok(view) => Ok(see_other(&format!(
            "/segments/{}?notice=segment_created",
            view.record.id
        ))),
        Err(outcome) => render_editor(
            &state,
            &console,
            None,
            &form,
            &outcome,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}

async fn load(state: &WebState, console: &Console, id: SegmentId) -> Result<SegmentView, WebError> {
    let ciclo = state.ciclo.clone();
    let actor = console.actor.clone();
    core(move || ciclo.get_segment(&actor, &id)).await
}

/// `GET /segments/{id}/edit`.
pub(crate) async fn edit_page(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    console.require(Permission::WriteCustomers)?;
    let view = load(&state, &console, parse_id(&id)?).await?;
    let form = EditorForm::of(&view);
    render_editor(
        &state,
        &console,
        Some(&view),
        &form,
        &Outcome::default(),
        StatusCode::OK,
    )
}

/// `POST /segments/{id}/edit`: preview or save.
pub(crate) async fn update(
    State(state): State<WebState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let raw = console.form(&body)?;
    console.require(Permission::WriteCustomers)?;
    let id = parse_id(&id)?;
    let view = load(&state, &console, id.clone()).await?;
    // The kind is fixed: the form cannot change it.
    let form = EditorForm::from_form(&raw, view.record.kind);
    if raw.get("intent") == Some("preview") && form.is_dynamic() {
        let outcome = preview(&state, &console, &form).await;
        let status = if outcome.failed() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        return render_editor(&state, &console, Some(&view), &form, &outcome, status);
    }
    match save(&state, &console, Some(id), &form).await? {
        Ok(saved) => Ok(see_other(&format!(
            "/segments/{}?notice=segment_saved",
            saved.record.id
        ))),
        Err(outcome) => render_editor(
            &state,
            &console,
            Some(&view),
            &form,
            &outcome,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}

/// `POST /segments/preview`: the definition's errors and the preview as an HTML fragment (for
/// the editor's script). Same form fields as the editor.
pub(crate) async fn preview_fragment(
    State(state): State<WebState>,
    console: Console,
    body: Bytes,
) -> Result<Response, WebError> {
    let raw = console.form(&body)?;
    let form = EditorForm::from_form(&raw, SegmentKind::Dynamic);
    let outcome = preview(&state, &console, &form).await;
    let values = context! {
        result => result_values(console.locale, &form, &outcome),
        errors => messages(console.locale, &outcome.errors),
    };
    // Errors are part of a successful answer here: the script shows them.
    render::page(
        &state.templates,
        &console,
        "segment_result.html",
        "segments",
        values,
    )
}
