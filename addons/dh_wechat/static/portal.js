/* DH 水电缴费: the payment page — WeChat JSAPI, then the order's status
   (待支付 → 已支付 → 已下发到表) polled until it is final. */
(function () {
  'use strict';
  var box = document.getElementById('order');
  if (!box) { return; }
  var statusUrl = box.getAttribute('data-status-url');
  var energy = box.getAttribute('data-energy') === '1';
  var status = document.getElementById('status');
  var result = document.getElementById('result');
  var payButton = document.getElementById('pay');
  var cashier = document.getElementById('cashier');
  var source = document.getElementById('jsapi');
  var params = source ? JSON.parse(source.textContent) : null;
  var tries = 0;
  var started = Date.now();

  function mark(done) {
    var items = box.querySelectorAll('ol.steps li');
    for (var i = 0; i < items.length; i++) {
      var key = items[i].getAttribute('data-step');
      items[i].className = done.indexOf(key) >= 0 ? 'done' : '';
    }
  }

  function render(s) {
    box.setAttribute('data-state', s.state);
    status.textContent = s.text;
    result.textContent = s.detail || '';
    var done = ['pending'];
    if (s.state === 'paid') { done.push('paid'); }
    if (s.delivery === 'delivered') { done.push('delivered'); }
    mark(done);
    if (s.state !== 'pending') {
      payButton.hidden = true;
      if (cashier) { cashier.hidden = true; }
    }
  }

  function poll() {
    fetch(statusUrl, {credentials: 'same-origin',
      headers: {'Accept': 'application/json'}})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        render(s);
        if (!s.final && Date.now() - started < 15 * 60 * 1000) {
          tries += 1;
          setTimeout(poll, tries < 60 ? 2000 : 5000);
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }

  function invoke() {
    if (!params || typeof WeixinJSBridge === 'undefined') { return false; }
    WeixinJSBridge.invoke('getBrandWCPayRequest', params, function (res) {
      var msg = res && res.err_msg;
      if (msg === 'get_brand_wcpay_request:ok') {
        status.textContent = '支付完成，正在确认到账…';
      } else if (msg === 'get_brand_wcpay_request:cancel') {
        status.textContent = '已取消支付';
        payButton.hidden = false;
      } else {
        status.textContent = '支付未完成，请重试';
        payButton.hidden = false;
      }
    });
    return true;
  }

  payButton.addEventListener('click', function () {
    payButton.hidden = true;
    if (!invoke()) { status.textContent = '请在微信中打开本页完成支付'; }
  });

  if (box.getAttribute('data-state') === 'pending' && params) {
    if (!invoke()) {
      document.addEventListener('WeixinJSBridgeReady', invoke, false);
      if (cashier) { cashier.hidden = false; }
      payButton.hidden = false;
    }
  }
  poll();
}());
