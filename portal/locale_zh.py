"""The portal's Chinese: English message id -> 简体中文. Templates, navigation and the services'
messages shown on pages all look up here (portal.i18n)."""

from __future__ import annotations

ZH: dict[str, str] = {
    # shell, navigation, page titles
    "unigate portal": "unigate 门户",
    "Skip to content": "跳到正文",
    "Developer": "开发者",
    "Administration": "管理",
    "admin": "管理员",
    "developer": "开发者",
    "Sign in": "登录",
    "Sign out": "退出",
    "Sign up": "注册",
    "Language": "语言",
    "Switch": "切换",
    "Back": "返回",
    "My apps": "我的应用",
    "API reference": "API 参考",
    "Account": "账户",
    "Dashboard": "仪表盘",
    "Connections": "连接",
    "APIs": "API",
    "Plans": "套餐",
    "Subscriptions": "订阅",
    "Consumers": "应用（调用方）",
    "Keys": "密钥",
    "Accounts": "账户管理",
    "Audit log": "审计日志",
    "Configuration": "配置",
    "Test connection": "测试连接",
    "Published APIs": "已发布的 API",
    "Pages": "分页",
    # accounts
    "Username": "用户名",
    "Password": "密码",
    "Email": "邮箱",
    "Role": "角色",
    "Created": "创建时间",
    "Last sign-in": "上次登录",
    "No account yet?": "还没有账户？",
    "Already registered?": "已经注册？",
    "Create a developer account": "注册开发者账户",
    "An administrator approves new accounts before they can sign in.": "新账户需经管理员批准后才能登录。",
    "3-100 letters, digits or . _ @ -": "3-100 个字母、数字或 . _ @ -",
    "At least 10 characters": "至少 10 个字符",
    "Your account was created and waits for an administrator's approval.": "账户已创建，正在等待管理员批准。",
    "Choose your language at the bottom of any page; it is remembered on your account.": (
        "可在任意页面底部选择语言，选择会保存在您的账户中。"
    ),
    "wrong username or password": "用户名或密码错误",
    "this account is waiting for an administrator's approval": "该账户正在等待管理员批准",
    "this account is disabled": "该账户已停用",
    "this needs an admin account": "此操作需要管理员账户",
    "sign in first": "请先登录",
    "too many failed sign-ins: wait a few minutes before trying again": "登录失败次数过多，请几分钟后再试",
    "too many new accounts from this address: try again later": "此地址近期注册的账户过多，请稍后再试",
    "the password needs at least 10 characters": "密码至少需要 10 个字符",
    "the form expired or came from another site (CSRF check); reload the page and try again": (
        "表单已过期或来自其他站点（CSRF 校验），请刷新页面后重试"
    ),
    # apps and keys
    "Apps": "应用",
    "Name": "名称",
    "Description": "描述",
    "Status": "状态",
    "Actions": "操作",
    "active": "有效",
    "suspended": "已暂停",
    "blocked: owner disabled": "已拦截：所有者已停用",
    "Its owner account is disabled: its keys and OAuth clients are refused until it is enabled.": (
        "其所有者账号已停用：在账号重新启用之前，其密钥和 OAuth 客户端均被拒绝。"
    ),
    "pending": "待批准",
    "disabled": "已停用",
    "expiring": "即将过期",
    "expired": "已过期",
    "revoked": "已吊销",
    "You have no apps yet. Register one below to get an API key.": (
        "您还没有应用。在下方注册一个即可获得 API 密钥。"
    ),
    "Register an app": "注册应用",
    "App name": "应用名称",
    "lowercase letters, digits, . _ -": "小写字母、数字、. _ -",
    "Default connection per API": "各 API 的默认连接",
    "none (send X-Connection)": "无（请求时发送 X-Connection）",
    "Register app": "注册应用",
    "API keys": "API 密钥",
    "API key": "API 密钥",
    "Your new key. It is shown only once: copy it now.": "这是您的新密钥，只显示一次：请立即复制。",
    "The old key keeps working until the end of the overlap.": "旧密钥在过渡期结束前仍然可用。",
    "Copy": "复制",
    "Prefix": "前缀",
    "Last used": "最近使用",
    "Expires": "过期时间",
    "Overlap (hours)": "过渡期（小时）",
    "Rotate": "轮换",
    "Revoke": "吊销",
    "Revoke this key? Calls with it will be refused at once.": "确定吊销此密钥？使用它的调用将立即被拒绝。",
    "No keys yet.": "还没有密钥。",
    "Key name": "密钥名称",
    "Expires after (days, empty = never)": "有效天数（留空为永不过期）",
    "Create key": "创建密钥",
    # subscriptions, OAuth clients, usage
    "An app calls an API only while subscribed to it under a plan. "
    "Some plans wait for an administrator's approval.": (
        "应用须在某个套餐下订阅 API 后才能调用。部分套餐需要管理员批准。"
    ),
    "API": "API",
    "Plan": "套餐",
    "Cancel": "取消",
    "Cancel this subscription?": "确定取消此订阅？",
    "Not subscribed to any API yet.": "尚未订阅任何 API。",
    "needs approval": "需要批准",
    "automatic": "自动生效",
    "Subscribe": "订阅",
    "What the plans allow": "各套餐的权限",
    "Limits": "限制",
    "No plans are offered yet: ask an administrator.": "暂无可用套餐，请联系管理员。",
    "Usage": "用量",
    "Today: {n} calls": "今日：{n} 次调用",
    "This month: {n} calls": "本月：{n} 次调用",
    "Daily calls, errors and latency of {api}": "{api} 每日调用量、错误与延迟",
    "No calls yet.": "还没有调用。",
    "Recent requests": "最近的请求",
    "When": "时间",
    "Request": "请求",
    "Duration": "耗时",
    "Request ID": "请求 ID",
    "No requests recorded yet.": "还没有记录到请求。",
    "OAuth2 clients": "OAuth2 客户端",
    "For client-credentials: POST /oauth/token with the client id and secret for a short-lived token.": (
        "客户端凭证模式：用 client id 和 secret 调用 POST /oauth/token 获取短期令牌。"
    ),
    "Your client secret. It is shown only once: copy it now.": "这是客户端密钥，只显示一次：请立即复制。",
    "Client secret": "客户端密钥",
    "Client ID": "客户端 ID",
    "Scopes": "权限范围",
    "No OAuth2 clients.": "没有 OAuth2 客户端。",
    "Client name": "客户端名称",
    "Create client": "创建客户端",
    "Limit overrides and IP rules": "限额覆盖与 IP 规则",
    "Saved.": "已保存。",
    "Overrides (JSON, laid over the plan)": "覆盖项（JSON，叠加在套餐之上）",
    'e.g. {"rate_limits": {"per_minute": 600}, "quotas": {"per_day": 100000}}': (
        '例如 {"rate_limits": {"per_minute": 600}, "quotas": {"per_day": 100000}}'
    ),
    "Allowed networks (one CIDR a line)": "允许的网段（每行一个 CIDR）",
    "Denied networks (one CIDR a line)": "拒绝的网段（每行一个 CIDR）",
    "Save": "保存",
    # API reference
    'Every unified operation, with try-it: paste one of your API keys below, then use "Try it out". '
    "The key stays in this page and is sent only to this gateway.": (
        "所有统一 API 操作均可在线试用：在下方粘贴您的 API 密钥，然后点击 “Try it out”。"
        "密钥只保留在本页面，并且只发送给本网关。"
    ),
    "Your API key": "您的 API 密钥",
    "You have no apps yet.": "您还没有应用。",
    "Register one to get a key.": "注册一个应用以获得密钥。",
    # admin: dashboard
    "Days": "天数",
    "Show": "显示",
    "Totals": "合计",
    "Calls": "调用",
    "Errors": "错误",
    "p50 ms": "p50 毫秒",
    "p95 ms": "p95 毫秒",
    "Limiter rejections": "限流拒绝",
    "Traffic, errors and latency": "流量、错误与延迟",
    "Calls, errors and p50 / p95 latency per day": "每日调用、错误及 p50 / p95 延迟",
    "Top consumers": "调用最多的应用",
    "Consumer": "应用",
    "No calls in this period.": "此期间没有调用。",
    "Circuit breakers": "熔断器",
    "Connection": "连接",
    "State": "状态",
    "closed": "闭合（正常）",
    "open": "断开",
    "half_open": "半开",
    "As seen by the node that served this page.": "由提供本页面的节点观测。",
    "No backend has been called by this node yet.": "本节点尚未调用过任何后端。",
    # admin: connections and APIs
    "Backends": "后端系统",
    "System": "系统",
    "Base URL": "基础 URL",
    "Credentials": "凭证",
    "Backend limits": "后端限制",
    "Edit": "编辑",
    "Delete": "删除",
    "Delete this connection?": "确定删除此连接？",
    "Connection {name} saved.": "连接 {name} 已保存。",
    "Consumer {name} created.": "应用 {name} 已创建。",
    "Create a consumer": "创建应用（调用方）",
    "Create consumer": "创建应用",
    "A consumer made here belongs to no developer; grant connections and issue keys on its page.": (
        "在此创建的应用不属于任何开发者；请在它的页面上授予连接并签发密钥。"
    ),
    "Revoke this token? Scripts using it will be refused at once.": (
        "确定吊销此令牌？使用它的脚本将立即被拒绝。"
    ),
    "Suspend this application? Its keys are refused until it is approved again.": (
        "确定暂停此应用？在重新批准前，它的密钥都将被拒绝。"
    ),
    "No connections yet: add the first backend below.": "还没有连接：请在下方添加第一个后端。",
    "Edit connection": "编辑连接",
    "Add a connection": "添加连接",
    "Write-only: stored encrypted and never shown again. Leave a field empty to keep its stored value.": (
        "只写：加密保存，不会再次显示。留空则保留已保存的值。"
    ),
    "Other options (JSON)": "其他选项（JSON）",
    'Defaults such as {"timezone": "Asia/Shanghai", "shop": "..."}': (
        '默认值，例如 {"timezone": "Asia/Shanghai", "shop": "..."}'
    ),
    "Save connection": "保存连接",
    "The backend accepted a signed call": "后端接受了签名调用",
    "The call failed": "调用失败",
    "The vendor's answer:": "厂商的应答：",
    "Operation": "操作",
    "Scope": "权限范围",
    "This system serves no unified operation.": "该系统不提供统一 API 操作。",
    "No connections yet.": "还没有连接。",
    # admin: plans and subscriptions
    "Rate limits": "速率限制",
    "Quotas": "配额",
    "Priority": "优先级",
    "Approval": "审批",
    "normal": "普通",
    "high": "高",
    "low": "低",
    "Delete this plan?": "确定删除此套餐？",
    "No plans yet: create one so apps can subscribe.": "还没有套餐：请创建一个，应用才能订阅。",
    "Create or change a plan": "创建或修改套餐",
    "Saving a plan with an existing name changes it; its subscriptions follow at once. "
    "Empty limits mean no limit.": ("以已有名称保存即修改该套餐，其订阅立即随之生效。留空表示不限制。"),
    "Change the existing plan of this name": "修改同名的现有套餐",
    "Calls per second": "每秒调用数",
    "Calls per minute": "每分钟调用数",
    "Calls per day": "每日调用数",
    "Calls per month": "每月调用数",
    "Subscriptions need an administrator's approval": "订阅需要管理员批准",
    "Save plan": "保存套餐",
    "Filter": "筛选",
    "Awaiting approval": "待批准",
    "Active": "有效",
    "Suspended": "已暂停",
    "All": "全部",
    "Approve": "批准",
    "Suspend": "暂停",
    "Resume": "恢复",
    "Move": "调整",
    "Nothing here.": "这里没有内容。",
    # admin: consumers, keys, accounts, tokens
    "Owner": "所有者",
    "Default connections": "默认连接",
    "No consumers yet.": "还没有应用。",
    "Key prefix": "密钥前缀",
    "the first characters of the key, e.g. ug_AbCd": "密钥开头的几个字符，例如 ug_AbCd",
    "Find": "查找",
    "No key starts with that.": "没有以此开头的密钥。",
    "Disable": "停用",
    "Enable": "启用",
    "Reset password": "重置密码",
    "New password for {name}. It is shown only once.": "{name} 的新密码，只显示一次。",
    "Admin API tokens": "管理 API 令牌",
    "For scripts calling /admin/api: send Authorization: Bearer <token>.": (
        "供脚本调用 /admin/api：发送 Authorization: Bearer <令牌>。"
    ),
    "Your new token. It is shown only once: copy it now.": "这是您的新令牌，只显示一次：请立即复制。",
    "Token": "令牌",
    "Token name": "令牌名称",
    "Issue token": "签发令牌",
    "No tokens yet.": "还没有令牌。",
    # admin: audit and configuration
    "Action": "操作",
    "Who": "操作人",
    "Target": "对象",
    "Before": "变更前",
    "After": "变更后",
    "show": "查看",
    "e.g. connection. or key.revoke": "例如 connection. 或 key.revoke",
    "Newer": "较新",
    "Older": "较早",
    "Nothing recorded yet.": "还没有记录。",
    "Applied as version {v}.": "已应用为版本 {v}。",
    "{n} changes.": "共 {n} 项变更。",
    "Version {v}": "版本 {v}",
    "Current configuration": "当前配置",
    "Credentials are ${UNIGATE_CONN_...} references, never secrets. Edit, preview the changes, then apply: "
    "the whole file is applied in one transaction or not at all.": (
        "凭证以 ${UNIGATE_CONN_...} 引用表示，绝不写入明文。"
        "编辑后先预览变更再应用：整个文件在一个事务中全部生效或全部不生效。"
    ),
    "Configuration YAML": "配置 YAML",
    "Comment": "备注",
    "Preview changes": "预览变更",
    "Apply": "应用",
    "Download YAML": "下载 YAML",
    "Changes": "变更",
    "create": "新建",
    "update": "修改",
    "delete": "删除",
    "suspend": "暂停",
    "connection": "连接",
    "consumer": "应用",
    "plan": "套餐",
    "api": "API 规则",
    "No changes.": "没有变更。",
    "Versions": "版本",
    "Version": "版本",
    "View": "查看",
    "Roll back to this": "回滚到此版本",
    "Apply this version again?": "确定重新应用此版本？",
    "state before apply": "应用前的状态",
    "Nothing applied yet. Versions are kept from the first apply on.": (
        "尚未应用过配置。从第一次应用起保留各版本。"
    ),
    # the schemes pages (portal/schemes/): until that feature registers its own
    "Schemes": "集成方案",
    "Integration schemes": "集成方案",
    "Scheme": "方案",
    "Source": "来源",
    "Schedule": "计划",
    "Last run": "最近运行",
    "Throughput": "吞吐量",
    "records/s": "条/秒",
    "Error rate": "错误率",
    "No schemes yet. `unigate seed-demo` installs the reference scheme.": (
        "还没有方案。`unigate seed-demo` 会安装参考方案。"
    ),
    "Value map (one 'from=to' a line)": "值映射（每行一个 '源=目标'）",
    "Drag a source field onto a target field to link them; "
    "pick a link to choose a function or a value map.": (
        "把来源字段拖到目标字段上建立映射；选中一条映射可选择函数或值映射。"
    ),
    "Failed": "失败",
    "Field mapping": "字段映射",
    "Function": "函数",
    "Link": "映射",
    "Load sample records": "加载样例记录",
    "Preview": "预览",
    "Pushed": "已推送",
    "Read": "已读取",
    "Remove link": "删除映射",
    "Run history": "运行历史",
    "Run now": "立即运行",
    "Run": "运行",
    "Save mapping and scheme": "保存映射和方案",
    "Source and target": "来源与目标",
    "Source connection": "来源连接",
    "Source fields": "来源字段",
    "Source operation": "来源操作",
    "Start": "启动",
    "Stop": "停止",
    "Target connection": "目标连接",
    "Target fields": "目标字段",
    "Target operation": "目标操作",
    "Trigger": "触发方式",
    "Unchanged": "未变更",
    "Attempts": "尝试次数",
    "Dead letters": "死信",
    "Error": "错误",
    "Failed only": "仅失败",
    "Progress": "进度",
    "Record": "记录",
    "Records": "记录",
    "Replay all": "全部重放",
    "Replay selected": "重放所选",
    "Select all": "全选",
    "Stage": "阶段",
    "Vendor answer": "厂商应答",
    # messages of refused forms (portal services); tests/portal/test_i18n.py finds every fixed one
    "a connection name is 2-100 lowercase letters, digits or . _ -, starting with one of those": (
        "连接名称为 2-100 个小写字母、数字或 . _ -，并以字母或数字开头"
    ),
    "a key expires after 1 to 3650 days, or never": "密钥有效期为 1 到 3650 天，或永不过期",
    "a key name has at most 100 characters": "密钥名称最多 100 个字符",
    "a plan needs a name": "套餐需要名称",
    "a token belongs to an admin account": "令牌必须属于管理员账户",
    "a username is 3-100 letters, digits or . _ @ -, starting with a letter or digit": (
        "用户名为 3-100 个字母、数字或 . _ @ -，并以字母或数字开头"
    ),
    "an app name is 2-100 lowercase letters, digits or . _ -, starting with a letter or digit": (
        "应用名称为 2-100 个小写字母、数字或 . _ -，并以字母或数字开头"
    ),
    "base_url must start with http:// or https://": "基础 URL 必须以 http:// 或 https:// 开头",
    "choose one of your apps": "请选择您的一个应用",
    "credentials are ${UNIGATE_CONN_...} references to environment variables named "
    "UNIGATE_CONN_<NAME>, never literal secrets nor other variables of the gateway": (
        "凭证须为 ${UNIGATE_CONN_...} 引用（环境变量名须以 UNIGATE_CONN_ 开头），"
        "不可写明文，也不可引用网关的其他变量"
    ),
    "give a status or a plan": "请给出状态或套餐",
    "give at least the first 4 characters of the key": "请至少输入密钥的前 4 个字符",
    "give the client at least one scope, like orders:read": "请至少选一个权限范围，如 orders:read",
    "only a working key can be rotated": "只有可用的密钥才能轮换",
    "other options must be a JSON object": "其他选项必须是 JSON 对象",
    "sign in as an admin, or send an admin token": "请以管理员身份登录，或发送管理员令牌",
    "that is not an email address": "这不是有效的邮箱地址",
    "the admin token is unknown or revoked, or its account is not an active admin": (
        "管理员令牌不存在或已吊销，或其账户不是有效的管理员"
    ),
    "the description has at most 500 characters": "描述最多 500 个字符",
    "the document must be a mapping with connections and consumers": "文档须为含 connections 等段落的映射",
    "the overrides must be a JSON object": "覆盖设置必须是 JSON 对象",
    "the plan's limits must be a JSON object": "套餐限制必须是 JSON 对象",
    "the status is active or disabled": "状态只能是 active 或 disabled",
    "unknown section; the sections are connections, plans and consumers": (
        "未知的段落；可用的段落为 connections、plans 和 consumers"
    ),
    "you cannot disable your own account": "不能停用自己的账户",
    "must be a whole number >= 1": "须为不小于 1 的整数",
    "a plan must allow at least one API": "套餐至少要允许一个 API",
    "the current password is wrong": "当前密码不正确",
    "the configuration changed since your preview: preview again before applying": (
        "预览之后配置已被修改：请重新预览后再应用"
    ),
    # plans and connections forms
    "Counting": "计数方式",
    "sliding window (cheap, approximate)": "滑动窗口（开销小，近似）",
    "moving window (exact)": "移动窗口（精确）",
    "Nothing was saved, and the credentials you typed are not kept in the page: type them again.": (
        "未保存任何内容，且您输入的凭证不会保留在页面中：请重新输入。"
    ),
    "no such account": "账户不存在",
    "Change password": "修改密码",
    "Current password": "当前密码",
    "New password": "新密码",
    "Your password was changed. Your other sessions were signed out.": "密码已修改，其他登录已退出。",
    "sign in with your password to change it": "请用密码登录后再修改密码",
    "Disable this account? Its sessions end at once.": "停用该账户？其登录会立即失效。",
    "Reset this password? The account is signed out everywhere.": "重置该密码？该账户会在所有地方退出登录。",
    # problem titles shown on error pages
    "Forbidden": "禁止访问",
    "Not found": "未找到",
    "Unauthorized": "未授权",
    "Invalid parameter": "参数无效",
    "Conflict": "冲突",
    "Internal error": "内部错误",
    "Rate limit exceeded": "请求过于频繁",
    # connection grants: which connections an application may use
    "Applications": "可用的应用",
    "open to every app": "对所有应用开放",
    "granted apps only": "仅限已授权的应用",
    "Open to every application": "对所有应用开放",
    "Any developer's app may use it. Otherwise only the apps an admin grants it to (and names it as their "
    "default for).": "任何开发者的应用都可使用。否则只有管理员授权（或将其设为默认连接）的应用可用。",
    "Granted connections": "已授权的连接",
    "every connection": "全部连接",
    "open connections only": "仅开放的连接",
    "Connections this app may use": "该应用可用的连接",
    "Open connections are usable by every app. Tick the others this app may use; its calls through any "
    "other connection are refused (403).": "开放的连接所有应用都可使用。请勾选该应用还可使用的其他连接；"
    "经由其他连接的调用会被拒绝（403）。",
    "only an admin grants connections": "只有管理员可以授权连接",
    "Connection not granted to this application": "该应用未获授权使用此连接",
    # the app page: its description and default connections
    "Description and default connections": "描述与默认连接",
    "not usable by this app": "该应用不可用",
}


# Messages with a name or number in them: (the English, as a regular expression, -> the Chinese with
# the groups in {0}, {1}, ...). Looked up when no fixed message matches.
PATTERNS: list[tuple[str, str]] = [
    (r"a consumer named (.+) already exists", "已存在名为 {0} 的应用"),
    (r"a plan named (.+) already exists", "已存在名为 {0} 的套餐"),
    (r"the username (.+) is taken", "用户名 {0} 已被占用"),
    (r"this application is already subscribed to (\w+)", "该应用已订阅 {0}"),
    (
        r"subscriptions use the plan (.+): move them to another plan first",
        "套餐 {0} 仍有订阅：请先把它们移到其他套餐",
    ),
    (
        r"there is no connection named (.+) that this app may use: choose an open one, or ask an admin to "
        r"grant it",
        "没有该应用可用的名为 {0} 的连接：请选择开放的连接，或请管理员授权",
    ),
    (r"there is no connection named (.+)", "没有名为 {0} 的连接"),
    (r"no plan named (.+)", "没有名为 {0} 的套餐"),
    (r"the overlap is 0 to (\d+) hours", "过渡期为 0 到 {0} 小时"),
    (r"the password needs at least (\d+) characters", "密码至少需要 {0} 个字符"),
    (r"(\S+) is a whole number", "{0} 须为整数"),
    (r"(\S+) must be a number", "{0} 须为数字"),
    (
        r"(.+) is not an IP address or CIDR range like 10\.0\.0\.0/8",
        "{0} 不是 IP 地址或 CIDR 网段（如 10.0.0.0/8）",
    ),
]

# Schemes (portal/schemes/): the service's refusals the new-scheme form and the designer's delete show.
PATTERNS += [
    (r"there is already a scheme named (.+)", "已存在名为 {0} 的方案"),
    (r"scheme (.+) is running; stop it first", "方案 {0} 正在运行；请先停止它"),
    (r"there is no scheme named (.+)", "没有名为 {0} 的方案"),
    (
        r"(.+) names a page of the admin API; choose another scheme name",
        "{0} 是管理 API 的页面名；请另选方案名称",
    ),
    (r"(.+) has no source operation (.+); offered: (.*)", "{0} 没有来源操作 {1}；可选：{2}"),
    (r"(.+) has no target operation (.+); offered: (.*)", "{0} 没有目标操作 {1}；可选：{2}"),
    (
        r"schedule (.+) is neither a cron expression nor an interval like 'every 30s'",
        "计划 {0} 既不是 cron 表达式，也不是 'every 30s' 这样的间隔",
    ),
]
