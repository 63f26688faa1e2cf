//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: wire <-> the group
//! coordinator. Each answers NOT_COORDINATOR when another broker
//! coordinates the group, so clients look it up again.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;
use super::RequestContext;
use crate::group::{coordinator_for, JoinRequest, LeaveMember, Protocol, SyncRequest};

/// NOT_COORDINATOR unless this broker coordinates `group`.
pub fn owns(broker: &Broker, group: &str) -> Result<(), ResponseError> {
    match coordinator_for(group, &broker.replicas.image()) {
        Some(node) if node == broker.id() => Ok(()),
        _ => Err(ResponseError::NotCoordinator),
    }
}

fn s(v: String) -> StrBytes {
    StrBytes::from_string(v)
}

pub async fn join(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    header: &RequestHeader,
    req: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let group = req.group_id.0.to_string();
    if let Err(e) = owns(broker, &group) {
        return JoinGroupResponse::default()
            .with_error_code(e.code())
            .with_generation_id(-1)
            .with_member_id(req.member_id);
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|i| i.to_string()),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
    };
    let r = broker.groups.join(group, join).await;
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error_code)
        .with_generation_id(r.generation_id)
        .with_protocol_name(r.protocol_name.map(s))
        .with_leader(s(r.leader))
        .with_member_id(s(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    let mut jm = JoinGroupResponseMember::default()
                        .with_member_id(s(m.member_id))
                        .with_metadata(m.metadata);
                    if version >= 5 {
                        jm.group_instance_id = m.group_instance_id.map(s);
                    }
                    jm
                })
                .collect(),
        );
    if version >= 7 {
        resp.protocol_type = r.protocol_type.map(s);
    }
    if version < 7 && resp.protocol_name.is_none() {
        // Before v7 the name is a non-nullable string.
        resp.protocol_name = Some(StrBytes::default());
    }
    if version >= 9 {
        resp.skip_assignment = r.skip_assignment;
    }
    resp
}

pub async fn sync(broker: &Arc<Broker>, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group = req.group_id.0.to_string();
    if let Err(e) = owns(broker, &group) {
        return SyncGroupResponse::default().with_error_code(e.code());
    }
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|i| i.to_string()),
        generation_id: req.generation_id,
        protocol_type: req.protocol_type.map(|p| p.to_string()),
        protocol_name: req.protocol_name.map(|p| p.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let r = broker.groups.sync(group, sync).await;
    let mut resp = SyncGroupResponse::default()
        .with_error_code(r.error_code)
        .with_assignment(r.assignment);
    if version >= 5 {
        resp.protocol_type = r.protocol_type.map(s);
        resp.protocol_name = r.protocol_name.map(s);
    }
    resp
}

pub async fn heartbeat(broker: &Arc<Broker>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let result = match owns(broker, &group) {
        Ok(()) => {
            broker
                .groups
                .heartbeat(
                    group,
                    req.member_id.to_string(),
                    req.group_instance_id.map(|i| i.to_string()),
                    req.generation_id,
                )
                .await
        }
        Err(e) => Err(e),
    };
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}

pub async fn leave(
    broker: &Arc<Broker>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    if let Err(e) = owns(broker, &group) {
        return LeaveGroupResponse::default().with_error_code(e.code());
    }
    let members: Vec<LeaveMember> = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeaveMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            })
            .collect()
    } else {
        vec![LeaveMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    match broker.groups.leave(group, members).await {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(results) if version < 3 => {
            // One member: its result is the answer.
            let code = results.first().map_or(0, |r| r.error_code);
            LeaveGroupResponse::default().with_error_code(code)
        }
        Ok(results) => LeaveGroupResponse::default().with_members(
            results
                .into_iter()
                .map(|r| {
                    MemberResponse::default()
                        .with_member_id(s(r.member_id))
                        .with_group_instance_id(r.group_instance_id.map(s))
                        .with_error_code(r.error_code)
                })
                .collect(),
        ),
    }
}
