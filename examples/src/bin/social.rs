//! `social`: likes, reactions, public subscriptions, events with RSVP and shared lists from the command
//! line. Connection flags as for `microblog`.
//!
//! ```text
//! social --server HOST:PORT --jid JID --password PW <command>
//!   like|unlike --service JID [--node NODE] --item ID
//!   react --service JID [--node NODE] --item ID EMOJI...        (replaces your reactions; none clears)
//!   attachments --service JID [--node NODE] --item ID [--json]
//!   follow --service JID [--node NODE] [--public]
//!   following [--of JID] [--json]            followers --service JID [--node NODE] [--json]
//!   event create --name N --start DATE --end DATE [--service JID] [--node NODE] [--id ID]
//!   event show|attendees --service JID [--node NODE] --item ID [--json]
//!   event rsvp --service JID [--node NODE] --item ID --answer yes|maybe|no
//!   event invite --service JID [--node NODE] --item ID --who JID
//!   list create --template grocery|todo|tickets [--service JID] [--app NAME]
//!   list add|update --service JID --app NAME [--id ID] --field NAME=VALUE...
//!   list share --service JID --app NAME --who JID [--access read|edit|manage|revoke]
//!   list show --service JID --app NAME [--json]
//! ```

use std::process::ExitCode;

use chrono::DateTime;
use clap::{Parser, Subcommand};
use jid::Jid;
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::client::XmppClient;
use xmpp_social::events::{
    Attending, CreateEventOptions, Event, EventNamespace, EventsExt, InviteOptions, RsvpAnswer,
    RsvpForm, NS_CALENDAR_EVENTS,
};
use xmpp_social::lists::{ItemValues, ListAccess, ListOptions, ListRef, ListTemplate, ListsExt};
use xmpp_social::microblog::{ItemRef, NS_MICROBLOG};
use xmpp_social::pps::PpsExt;
use xmpp_social::pubsub::PubSubExt;
use xmpp_social::{Connection, Error};
use xmpp_social_examples::{parse_jid, print_json, run_main, ConnectArgs};

#[derive(Parser)]
#[command(about = "XMPP social features: likes, reactions, follows, events, lists")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// Service (pubsub service or PEP account) of the item.
    #[arg(long)]
    service: String,
    /// Node of the item.
    #[arg(long)]
    node: Option<String>,
    /// Item id.
    #[arg(long)]
    item: String,
}

impl Target {
    fn item_ref(&self, default_node: &str) -> Result<ItemRef, String> {
        Ok(ItemRef::new(
            parse_jid(&self.service)?,
            self.node.clone().unwrap_or_else(|| default_node.to_owned()),
            self.item.clone(),
        ))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Like an item (XEP-0470 `noticed`).
    Like(Target),
    /// Remove your like.
    Unlike(Target),
    /// Set your reactions to an item (XEP-0470 `reactions`).
    React {
        #[command(flatten)]
        target: Target,
        /// The emojis (none: remove your reactions).
        emojis: Vec<String>,
    },
    /// Everybody's attachments to an item.
    Attachments {
        #[command(flatten)]
        target: Target,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Subscribe to a node, publicly (XEP-0465) with --public.
    Follow {
        /// Service.
        #[arg(long)]
        service: String,
        /// Node (default: the blog node).
        #[arg(long)]
        node: Option<String>,
        /// Make the subscription public.
        #[arg(long)]
        public: bool,
    },
    /// Whom a user publicly follows.
    Following {
        /// The user (default: yourself).
        #[arg(long)]
        of: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Who publicly follows a node.
    Followers {
        /// Service.
        #[arg(long)]
        service: String,
        /// Node (default: the blog node).
        #[arg(long)]
        node: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Calendar events (XEP-0471).
    #[command(subcommand)]
    Event(EventCommand),
    /// Shared lists (XEP-0346).
    #[command(subcommand)]
    List(ListCommand),
}

#[derive(Subcommand)]
enum EventCommand {
    /// Create an event.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Start (RFC 3339).
        #[arg(long)]
        start: String,
        /// End (RFC 3339).
        #[arg(long)]
        end: String,
        /// Service (default: your PEP).
        #[arg(long)]
        service: Option<String>,
        /// Node (default: urn:xmpp:calendar-events:0).
        #[arg(long)]
        node: Option<String>,
        /// Item id (default: a friendly id from the name).
        #[arg(long)]
        id: Option<String>,
    },
    /// Show an event.
    Show {
        #[command(flatten)]
        target: Target,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Answer an event's invitation.
    Rsvp {
        #[command(flatten)]
        target: Target,
        /// yes, maybe or no.
        #[arg(long)]
        answer: String,
    },
    /// Who comes, with the XEP's summary.
    Attendees {
        #[command(flatten)]
        target: Target,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Invite somebody.
    Invite {
        #[command(flatten)]
        target: Target,
        /// The invitee.
        #[arg(long)]
        who: String,
    },
}

#[derive(Subcommand)]
enum ListCommand {
    /// Create a list from a ready-made template.
    Create {
        /// grocery, todo or tickets.
        #[arg(long)]
        template: String,
        /// Service (default: your PEP).
        #[arg(long)]
        service: Option<String>,
        /// Application name in the node names (default: the template's name).
        #[arg(long)]
        app: Option<String>,
    },
    /// Add an entry.
    Add {
        /// Service.
        #[arg(long)]
        service: String,
        /// Application name.
        #[arg(long)]
        app: String,
        /// NAME=VALUE (repeatable).
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Change an entry.
    Update {
        /// Service.
        #[arg(long)]
        service: String,
        /// Application name.
        #[arg(long)]
        app: String,
        /// Entry id.
        #[arg(long)]
        id: String,
        /// NAME=VALUE (repeatable).
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Give somebody access to the list (read, edit, manage or revoke).
    Share {
        /// Service.
        #[arg(long)]
        service: String,
        /// Application name.
        #[arg(long)]
        app: String,
        /// Who.
        #[arg(long)]
        who: String,
        /// read, edit, manage or revoke.
        #[arg(long, default_value = "edit")]
        access: String,
    },
    /// Show the list.
    Show {
        /// Service.
        #[arg(long)]
        service: String,
        /// Application name.
        #[arg(long)]
        app: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn values(fields: &[String]) -> Result<ItemValues, String> {
    let mut v = ItemValues::new();
    for f in fields {
        let (k, val) = f
            .split_once('=')
            .ok_or_else(|| format!("--field wants NAME=VALUE, got {f:?}"))?;
        v = v.set(k, val);
    }
    Ok(v)
}

fn err(what: &str) -> impl Fn(Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn run(cli: Cli) -> Result<(), String> {
    let client = cli.conn.connect().await?;
    let result = command(&client, cli.command).await;
    let _ = client.close().await;
    result
}

async fn command(c: &XmppClient, command: Command) -> Result<(), String> {
    match command {
        Command::Like(t) => {
            c.set_noticed(&t.item_ref(NS_MICROBLOG)?, true)
                .await
                .map_err(err("like"))?;
        }
        Command::Unlike(t) => {
            c.set_noticed(&t.item_ref(NS_MICROBLOG)?, false)
                .await
                .map_err(err("unlike"))?;
        }
        Command::React { target, emojis } => {
            let e: Vec<&str> = emojis.iter().map(String::as_str).collect();
            c.set_reactions(&target.item_ref(NS_MICROBLOG)?, &e)
                .await
                .map_err(err("react"))?;
        }
        Command::Attachments { target, json } => {
            let view = c
                .attachments(&target.item_ref(NS_MICROBLOG)?)
                .await
                .map_err(err("attachments"))?;
            if json {
                print_json(&view)?;
            } else {
                println!("{view:#?}");
            }
        }
        Command::Follow {
            service,
            node,
            public,
        } => {
            let service = parse_jid(&service)?;
            let node = node.unwrap_or_else(|| NS_MICROBLOG.to_owned());
            if !public {
                c.subscribe(Some(&service), &node)
                    .await
                    .map_err(err("follow"))?;
            } else {
                match c.subscribe_public(&service, &node).await {
                    Ok(()) => {}
                    Err(Error::Unsupported(why)) => {
                        eprintln!("{why}; using the client-maintained fallback of XEP-0465");
                        c.subscribe_public_fallback(&service, &node)
                            .await
                            .map_err(err("follow (fallback)"))?;
                    }
                    Err(e) => return Err(format!("follow: {e}")),
                }
            }
        }
        Command::Following { of, json } => {
            let of = match of {
                Some(j) => parse_jid(&j)?,
                None => Jid::from(c.jid().to_bare()),
            };
            let subs = c
                .public_subscriptions(&of)
                .await
                .map_err(err("following"))?;
            if json {
                print_json(&subs)?;
            } else {
                println!("{subs:#?}");
            }
        }
        Command::Followers {
            service,
            node,
            json,
        } => {
            let node = node.unwrap_or_else(|| NS_MICROBLOG.to_owned());
            let subs = c
                .public_subscribers(&parse_jid(&service)?, &node)
                .await
                .map_err(err("followers"))?;
            if json {
                print_json(&subs)?;
            } else {
                println!("{subs:#?}");
            }
        }
        Command::Event(e) => event(c, e).await?,
        Command::List(l) => list(c, l).await?,
    }
    Ok(())
}

fn date(s: &str) -> Result<DateTime<chrono::FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s).map_err(|e| format!("bad date {s:?}: {e}"))
}

async fn event(c: &XmppClient, command: EventCommand) -> Result<(), String> {
    match command {
        EventCommand::Create {
            name,
            start,
            end,
            service,
            node,
            id,
        } => {
            let service = service.as_deref().map(parse_jid).transpose()?;
            let ev = Event::new(name, date(&start)?, date(&end)?)
                .with_rsvp(RsvpForm::standard(EventNamespace::Current));
            let item = c
                .create_event(
                    service.as_ref(),
                    node.as_deref(),
                    ev,
                    CreateEventOptions {
                        id,
                        ..CreateEventOptions::default()
                    },
                )
                .await
                .map_err(err("event create"))?;
            println!("{}", item.item);
        }
        EventCommand::Show { target, json } => {
            let ev = c
                .event(&target.item_ref(NS_CALENDAR_EVENTS)?)
                .await
                .map_err(err("event show"))?;
            if json {
                print_json(&ev)?;
            } else {
                println!("{ev:#?}");
            }
        }
        EventCommand::Rsvp { target, answer } => {
            let attending = match answer.as_str() {
                "yes" => Attending::Yes,
                "maybe" => Attending::Maybe,
                "no" => Attending::No,
                other => return Err(format!("--answer is yes, maybe or no, not {other:?}")),
            };
            c.rsvp(
                &target.item_ref(NS_CALENDAR_EVENTS)?,
                RsvpAnswer::new(attending),
            )
            .await
            .map_err(err("rsvp"))?;
        }
        EventCommand::Attendees { target, json } => {
            let a = c
                .attendees(&target.item_ref(NS_CALENDAR_EVENTS)?)
                .await
                .map_err(err("attendees"))?;
            if json {
                print_json(&a)?;
            } else {
                println!("{a:#?}");
            }
        }
        EventCommand::Invite { target, who } => {
            c.invite(
                &target.item_ref(NS_CALENDAR_EVENTS)?,
                &parse_jid(&who)?,
                InviteOptions::default(),
            )
            .await
            .map_err(err("invite"))?;
        }
    }
    Ok(())
}

async fn list(c: &XmppClient, command: ListCommand) -> Result<(), String> {
    match command {
        ListCommand::Create {
            template,
            service,
            app,
        } => {
            let t = match template.as_str() {
                "grocery" => ListTemplate::grocery(),
                "todo" => ListTemplate::todo(),
                "tickets" => ListTemplate::tickets(),
                other => return Err(format!("unknown template {other:?}")),
            };
            let service = service.as_deref().map(parse_jid).transpose()?;
            let app = app.unwrap_or(template);
            let list = c
                .create_list(service.as_ref(), &app, &t, ListOptions::default())
                .await
                .map_err(err("list create"))?;
            println!("{} {}", list.service, list.app);
        }
        ListCommand::Add {
            service,
            app,
            fields,
        } => {
            let list = ListRef::new(parse_jid(&service)?, app);
            let e = c
                .add_item(&list, values(&fields)?)
                .await
                .map_err(err("list add"))?;
            println!("{}", e.id);
        }
        ListCommand::Update {
            service,
            app,
            id,
            fields,
        } => {
            let list = ListRef::new(parse_jid(&service)?, app);
            c.update_item(&list, &id, values(&fields)?)
                .await
                .map_err(err("list update"))?;
        }
        ListCommand::Share {
            service,
            app,
            who,
            access,
        } => {
            let access = match access.as_str() {
                "read" => ListAccess::Read,
                "edit" => ListAccess::Edit,
                "manage" => ListAccess::Manage,
                "revoke" => ListAccess::Revoke,
                other => return Err(format!("unknown access {other:?}")),
            };
            let list = ListRef::new(parse_jid(&service)?, app);
            c.share_list(&list, &parse_jid(&who)?, access)
                .await
                .map_err(err("list share"))?;
        }
        ListCommand::Show { service, app, json } => {
            let list = ListRef::new(parse_jid(&service)?, app);
            let view = c.list(&list, None).await.map_err(err("list show"))?;
            if json {
                print_json(&view)?;
            } else {
                for e in &view.entries {
                    let fields: Vec<String> = e
                        .form
                        .fields
                        .iter()
                        .filter(|f| f.var.as_deref() != Some("FORM_TYPE"))
                        .map(|f| {
                            format!(
                                "{}={}",
                                f.var.clone().unwrap_or_default(),
                                f.values.join(",")
                            )
                        })
                        .collect();
                    println!("[{}] {}", e.id, fields.join(" "));
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
