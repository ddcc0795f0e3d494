with

customers as (

    select * from {{ ref('customers') }}

),

accounts as (

    select * from {{ ref('accounts') }}

),

transactions as (

    select * from {{ ref('transactions') }}

),

account_totals as (

    select
        customer_id,
        count(*) as n_accounts,
        sum(balance) as total_balance

    from accounts

    group by customer_id

),

transaction_totals as (

    select
        accounts.customer_id,
        count(*) as n_transactions,
        avg(case when transactions.is_fraud then 1.0 else 0.0 end) as fraud_share

    from transactions

    inner join accounts
        on transactions.account_id = accounts.account_id

    group by accounts.customer_id

),

final as (

    select
        customers.customer_id,
        customers.segment,
        customers.region,
        coalesce(account_totals.n_accounts, 0) as n_accounts,
        coalesce(account_totals.total_balance, 0) as total_balance,
        coalesce(transaction_totals.n_transactions, 0) as n_transactions,
        transaction_totals.fraud_share

    from customers

    left join account_totals
        on customers.customer_id = account_totals.customer_id

    left join transaction_totals
        on customers.customer_id = transaction_totals.customer_id

)

select * from final
