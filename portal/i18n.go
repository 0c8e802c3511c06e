package portal

import (
	"net/http"
	"strings"
	"time"
	_ "time/tzdata" // the subject's zone is found on a machine without a zone database too

	"github.com/privguard/privguard"
)

// Languages the privacy centre speaks; the first is the default of PIPL subjects.
const (
	LangZH = "zh-CN"
	LangEN = "en"
)

// Text is a text in each language, keyed "en" and "zh" (the configuration's keys).
type Text map[string]string

// In returns t in lang, else in the other language, else "".
func (t Text) In(lang string) string {
	key := "en"
	if lang == LangZH {
		key = "zh"
	}
	if s := t[key]; s != "" {
		return s
	}
	for _, k := range []string{"en", "zh"} {
		if s := t[k]; s != "" {
			return s
		}
	}
	return ""
}

// chooseLang picks the page's language: the subject's switch (the lang cookie), else
// Accept-Language, else the regime's (zh-CN under PIPL, en under GDPR).
func chooseLang(r *http.Request, regime privguard.Regime) string {
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == LangZH || c.Value == LangEN) {
		return c.Value
	}
	if lang, ok := acceptLanguage(r.Header.Get("Accept-Language")); ok {
		return lang
	}
	if regime == privguard.RegimeGDPR {
		return LangEN
	}
	return LangZH
}

// acceptLanguage returns the first of zh or en in an Accept-Language header, by quality.
func acceptLanguage(h string) (string, bool) {
	best, bestQ := "", -1.0
	for i, part := range strings.Split(h, ",") {
		if i >= 16 {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			switch v {
			case "0", "0.0", "0.00", "0.000":
				q = 0
			default:
				if len(v) >= 3 && v[0] == '0' && v[1] == '.' {
					q = float64(v[2]-'0') / 10
				}
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		lang := ""
		switch base {
		case "zh":
			lang = LangZH
		case "en":
			lang = LangEN
		}
		if lang != "" && q > bestQ && q > 0 {
			best, bestQ = lang, q
		}
	}
	return best, best != ""
}

// zoneOf is where the subject's times are shown: Beijing time for PIPL subjects, else the
// browser's zone (the tz cookie the page's script sets), else UTC.
func zoneOf(r *http.Request, regime privguard.Regime, fixed *time.Location) *time.Location {
	if fixed != nil {
		return fixed
	}
	if regime != privguard.RegimeGDPR {
		return shanghai
	}
	if c, err := r.Cookie(tzCookie); err == nil && len(c.Value) <= 64 && strings.Count(c.Value, "/") <= 2 && !strings.Contains(c.Value, "..") {
		if loc, err := time.LoadLocation(c.Value); err == nil && c.Value != "" && c.Value != "Local" {
			return loc
		}
	}
	return time.UTC
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// msgs are the page texts. Every key has both languages (TestCatalogComplete).
var msgs = map[string][2]string{ // {en, zh-CN}
	"title":                        {"Privacy centre", "隐私中心"},
	"skip":                         {"Skip to content", "跳到正文"},
	"nav.choices":                  {"My choices", "我的选择"},
	"nav.profile":                  {"My profile", "我的画像"},
	"nav.requests":                 {"My requests", "我的请求"},
	"nav.signout":                  {"Sign out", "退出"},
	"lang.switch":                  {"中文", "English"},
	"lang.switch.label":            {"Switch to Chinese", "切换到英文"},
	"signin.title":                 {"Sign in", "登录"},
	"signin.intro":                 {"Enter the phone number or email address you gave us. We will send you a one-time code.", "请输入您留给我们的手机号码或电子邮箱，我们会向您发送一次性验证码。"},
	"signin.identifier":            {"Phone number or email", "手机号码或电子邮箱"},
	"signin.send":                  {"Send code", "发送验证码"},
	"signin.sent":                  {"If this phone number or email belongs to an account, a code is on its way. It expires in 10 minutes.", "如果该手机号码或电子邮箱属于某个账户，验证码已发送，10 分钟内有效。"},
	"signin.code":                  {"One-time code", "验证码"},
	"signin.verify":                {"Sign in", "登录"},
	"signin.again":                 {"Use another phone number or email", "使用其他手机号码或邮箱"},
	"signin.wrong":                 {"That code is wrong or has expired.", "验证码错误或已过期。"},
	"signin.expired":               {"Your sign-in has expired. Please start again.", "登录已过期，请重新开始。"},
	"signin.invalid":               {"Enter a phone number (with its country code, e.g. +86) or an email address.", "请输入手机号码（含国家代码，如 +86）或电子邮箱地址。"},
	"signin.token.bad":             {"This sign-in link is not valid or has expired. Please sign in again from the app, or with a code.", "该登录链接无效或已过期，请从 App 重新进入，或使用验证码登录。"},
	"limit":                        {"Too many attempts. Please wait and try again later.", "尝试次数过多，请稍后再试。"},
	"csrf":                         {"This form has expired. Please reload the page and try again.", "表单已失效，请刷新页面后重试。"},
	"error":                        {"Something went wrong on our side. Nothing was changed. Please try again later.", "服务暂时出现问题，未做任何更改，请稍后再试。"},
	"notfound":                     {"This page does not exist.", "页面不存在。"},
	"choices.title":                {"My choices", "我的选择"},
	"choices.intro":                {"These are the uses of your personal information that need your consent. A change takes effect at once, and you get a signed receipt for it.", "以下是需要您同意的个人信息使用方式。更改即时生效，并会为您生成签名回执。"},
	"choices.channels":             {"Messages we may send you", "我们可以向您发送的消息"},
	"choices.topic":                {"Topic", "主题"},
	"choices.other":                {"Other uses", "其他用途"},
	"choices.separate":             {"Separate consents", "单独同意"},
	"choices.separate.hint":        {"The law asks for a separate consent for each of these. Each is asked for and kept on its own.", "法律要求以下每一项单独取得同意，分别征求、分别记录。"},
	"choices.on":                   {"On", "已开启"},
	"choices.off":                  {"Off", "已关闭"},
	"choices.turn_on":              {"Turn on", "开启"},
	"choices.turn_off":             {"Turn off", "关闭"},
	"choices.blocked":              {"Off while your objection to direct marketing stands.", "因您已拒绝直接营销，此项不生效。"},
	"choices.notice":               {"What you agreed to", "您同意的告知内容"},
	"choices.unavailable":          {"This cannot be turned on here yet: its notice is not published. Nothing was changed.", "此项暂时无法在此开启：相关告知尚未发布。未做任何更改。"},
	"choices.saved":                {"Saved. Your choice takes effect now.", "已保存，您的选择即时生效。"},
	"choices.receipt":              {"Download the signed receipt", "下载签名回执"},
	"choices.receipt.verify":       {"The receipt is signed; it can be checked with the public key at", "回执已签名，可使用以下公钥验证："},
	"choices.prompt":               {"Would you like this?", "您是否同意？"},
	"choices.prompt.yes":           {"Yes, allow", "同意"},
	"choices.prompt.no":            {"No, thanks", "不同意"},
	"choices.personal":             {"Personalisation", "个性化推荐"},
	"choices.personal.on":          {"Recommendations and offers are chosen for you from your profile.", "根据您的画像为您推荐内容和优惠。"},
	"choices.personal.off":         {"Personalisation is off: you see the same recommendations as everyone.", "个性化推荐已关闭：您看到的是不针对个人的推荐。"},
	"choices.personal.turn_off":    {"Turn personalisation off", "关闭个性化推荐"},
	"choices.personal.turn_on":     {"Turn personalisation on", "开启个性化推荐"},
	"choices.object":               {"Object to all direct marketing", "拒绝所有直接营销"},
	"choices.object.hint":          {"We will send you no marketing on any channel.", "我们将不再通过任何渠道向您发送营销信息。"},
	"choices.objected":             {"You objected to direct marketing. We send you no marketing on any channel.", "您已拒绝直接营销，我们不会通过任何渠道向您发送营销信息。"},
	"channel.sms":                  {"SMS", "短信"},
	"channel.email":                {"Email", "邮件"},
	"channel.push":                 {"App push", "App 推送"},
	"channel.wechat":               {"WeChat", "微信"},
	"profile.title":                {"My profile", "我的画像"},
	"profile.intro":                {"These tags and segments were derived from your activity and are used to choose what we show and send you. You can delete any of them.", "以下标签和分组是根据您的行为推断得出的，用于决定向您展示和发送的内容。您可以删除其中任何一项。"},
	"profile.derived":              {"Derived", "推断"},
	"profile.where":                {"Held in", "存放于"},
	"profile.none":                 {"We hold no tags or segments on you.", "我们没有为您保存任何标签或分组。"},
	"profile.delete":               {"Delete", "删除"},
	"profile.deleted":              {"Deletion requested. The tag is removed from every store within minutes; the request is under My requests.", "已提交删除，该标签将在几分钟内从所有存储中删除；请求可在“我的请求”中查看。"},
	"profile.unavailable":          {"Your profile cannot be read right now. Please try again later.", "暂时无法读取您的画像，请稍后再试。"},
	"requests.title":               {"My requests", "我的请求"},
	"requests.intro":               {"Ask for a copy of your data, its correction or deletion, or to close your account. It is free. We answer by the legal deadline shown.", "您可以申请获取个人信息副本、更正或删除个人信息，或注销账户。完全免费，我们会在所示的法定期限内答复。"},
	"requests.new":                 {"Make a request", "提交请求"},
	"requests.none":                {"You have made no requests.", "您尚未提交任何请求。"},
	"requests.submit":              {"Send request", "提交"},
	"requests.sent":                {"Your request is received.", "您的请求已收到。"},
	"requests.received":            {"Received", "提交时间"},
	"requests.deadline":            {"Answer due by", "答复期限"},
	"requests.status":              {"Status", "状态"},
	"requests.reason":              {"Reason", "理由"},
	"requests.recourse":            {"If you disagree", "如有异议"},
	"requests.download":            {"Download my data", "下载我的数据"},
	"requests.download.hint":       {"The copy can be downloaded once; it is then destroyed.", "副本只能下载一次，下载后即销毁。"},
	"requests.correction.category": {"What to correct", "更正的内容"},
	"requests.correction.value":    {"The correct value", "正确的信息"},
	"requests.review":              {"I want a person to review the decision", "我要求人工复核该决定"},
	"requests.statement":           {"Your point of view (optional)", "您的意见（选填）"},
	"requests.review.requested":    {"A person will review the decision.", "将由人工复核该决定。"},
	"requests.review.upheld":       {"A person reviewed the decision and upheld it.", "经人工复核，维持原决定。"},
	"requests.review.changed":      {"A person reviewed the decision and changed it.", "经人工复核，已变更原决定。"},
	"requests.model":               {"Model", "模型"},
	"requests.features":            {"Data used", "使用的数据"},
	"requests.logic":               {"How it decides", "决策逻辑"},
	"requests.recent":              {"Decisions about you in the last 90 days", "近 90 天内针对您的决策次数"},
	"requests.cancel.warn":         {"Closing your account deletes or anonymises your personal information in all our systems. It cannot be undone.", "注销账户将在我们所有系统中删除或匿名化您的个人信息，且无法恢复。"},
	"type.access":                  {"A copy of my data", "获取我的个人信息副本"},
	"type.portability":             {"My data in a machine-readable file (to move it elsewhere)", "可携带的个人信息副本（机器可读）"},
	"type.correction":              {"Correct my data", "更正我的个人信息"},
	"type.deletion":                {"Delete my data", "删除我的个人信息"},
	"type.restriction":             {"Stop using my data (keep it stored only)", "限制处理（仅保存，不使用）"},
	"type.objection":               {"Object to direct marketing", "拒绝直接营销"},
	"type.explanation":             {"Explain an automated decision about me", "解释针对我的自动化决策"},
	"type.cancellation":            {"Close my account", "注销我的账户"},
	"type.categories":              {"Which kinds of data you hold", "您持有的个人信息类别"},
	"type.tag_deletion":            {"Delete tags", "删除标签"},
	"state.received":               {"Received", "已收到"},
	"state.awaiting_verification":  {"Awaiting verification", "等待验证"},
	"state.in_progress":            {"In progress", "处理中"},
	"state.verified":               {"Verified", "已验证"},
	"state.awaiting_approval":      {"Awaiting approval", "等待审批"},
	"state.completed":              {"Completed", "已完成"},
	"state.partially_failed":       {"Partly completed; we are on it", "部分完成，正在处理"},
	"state.rejected":               {"Refused", "已拒绝"},
	"state.awaiting_review":        {"With a person for review", "人工复核中"},
	"state.cancelled":              {"Cancelled", "已取消"},
	"state.human_review":           {"With a person for review", "人工复核中"},
	"footer.controller":            {"Controller", "个人信息处理者"},
	"footer.dpo":                   {"Data protection officer", "个人信息保护负责人"},
	"footer.contact":               {"Contact", "联系方式"},
	"footer.key":                   {"Receipt signing key", "回执签名公钥"},
	"footer.times":                 {"Times are shown in", "时间显示时区："},
}

// tr returns the text of key in lang (the key itself if unknown, which a test forbids).
func tr(lang, key string) string {
	m, ok := msgs[key]
	if !ok {
		return key
	}
	if lang == LangZH {
		return m[1]
	}
	return m[0]
}

// builtinZH names the built-in taxonomy's purposes in Chinese, for choices the
// configuration gives no text of its own (the taxonomy's descriptions are English).
var builtinZH = map[privguard.Purpose]string{
	"essential.service":                 "提供您所要求的服务",
	"essential.storage":                 "依法必须保存的数据的存储",
	"essential.security":                "安全、防欺诈与事件响应",
	"essential.pricing":                 "向您提供的价格与条款",
	"essential.legal_claims":            "提起、行使或抗辩法律请求",
	"analytics.reporting":               "服务使用情况的汇总统计",
	"analytics.ab_testing":              "功能与消息的 A/B 测试",
	"marketing.profiling":               "用户标签、分组、RFM 评分与兴趣推断",
	"marketing.communications.sms":      "营销短信",
	"marketing.communications.email":    "营销邮件",
	"marketing.communications.push":     "App 营销推送",
	"marketing.communications.wechat":   "微信营销消息",
	"marketing.advertising.first_party": "在我们自有平台上的定向广告",
	"marketing.advertising.third_party": "与广告平台共享的相似人群与自定义人群",
	"personalize.recommendation":        "个性化推荐",
	"third_party.sharing":               "向其他个人信息处理者提供个人信息",
	"cross_border.transfer":             "向境外提供个人信息",
	"sensitive.processing":              "处理敏感个人信息",
}
